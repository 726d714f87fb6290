"""The MetaMAPG algorithm; importing this registers it (and the envs) with Tune."""

from ray.tune.registry import register_trainable

from rllib_metamapg.callbacks.cooldown_callback import CooldownCallback
from rllib_metamapg.envs import register_envs
from rllib_metamapg.metamapg.metamapg import MetaMAPG, MetaMAPGConfig


def register() -> None:
    """(Re-)registers ``"MetaMAPG"`` and every environment with Tune.

    Tune keeps a registration only in the Ray session it was made in (or the next
    one to start), so call this again after ``ray.shutdown()``; import and
    ``MetaMAPGConfig.validate()`` call it for you.
    """
    register_trainable("MetaMAPG", MetaMAPG)
    register_envs()


register()

__all__ = ["CooldownCallback", "MetaMAPG", "MetaMAPGConfig", "register"]
