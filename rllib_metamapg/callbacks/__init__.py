"""RLlib callbacks shipped with rllib-metamapg."""

from rllib_metamapg.callbacks.cooldown_callback import CooldownCallback

__all__ = ["CooldownCallback"]
