"""The RLlib engine every method of this package builds on.

* :mod:`.config`: :class:`PluginPPOConfig`, the base config (sampler axis,
  ``critic_lr``, range checks on PPO's numbers, required callbacks);
* :mod:`.algorithm`: :class:`PluginAlgorithm` (env registration, one module per agent,
  sampler installation through the registry), :func:`arm_config`, Tune registration;
* :mod:`.torch.learner`: :class:`PluginPPOTorchLearner`, the base learner with
  ``critic_lr`` built in;
* :mod:`.torch.module_params`: which parameters of a module its policy reads.

A new method is a config subclass, a learner subclass and an algorithm
(``class MyAlgo(PluginAlgorithm, PPO)``); docs/methods.md has the recipe.  Nothing
here imports a method or a sampler: they are reached through the registry.
"""
