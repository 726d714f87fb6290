"""MAPPO has no tabular update: the tabular engine has no learned critic (exact mode
differentiates the values themselves; sampled mode uses returns), so a centralized
critic means nothing there.  Its arm is RLlib-only (``engines=("rllib",)``), so the
engine refuses it by name before this is reached."""

from rllib_metamapg.registry import RegistryError


def no_tabular_update(*args, **kwargs):
    raise RegistryError("method 'mappo' runs in RLlib only: the tabular engine has no "
                        "learned critic to centralize; use its arms with metamapg sweep "
                        "or rllib train.")
