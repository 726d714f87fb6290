"""The MetaMAPG algorithm; importing this registers it (and the envs) with Tune."""

from ray.tune.registry import register_trainable

from rllib_metamapg import envs as _envs  # registers the environments
from rllib_metamapg.callbacks.cooldown_callback import CooldownCallback
from rllib_metamapg.metamapg.metamapg import MetaMAPG, MetaMAPGConfig

register_trainable("MetaMAPG", MetaMAPG)

__all__ = ["CooldownCallback", "MetaMAPG", "MetaMAPGConfig"]
del _envs
