"""Samplers: how actions are drawn during collection (the registry's *sampler* axis).

* ``on_policy``: every agent samples from its own current (target) policy;
* ``props``: each agent samples from its own behaviour policy, adapted to make its
  own marginal data distribution look more like its target (PROPS per agent);
* ``ma_props``: one centralized behaviour policy over *joint* actions, adapted to
  make the joint data distribution look more like the joint target (MA-PROPS).

:mod:`.behaviour` is the tabular engine's batched implementation for normal-form
games; :mod:`.specs` holds the registry entries.  Ray-free.
"""
