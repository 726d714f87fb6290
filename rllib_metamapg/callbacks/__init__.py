"""RLlib callbacks shipped with rllib-metamapg."""

from rllib_metamapg.callbacks.cooldown_callback import CooldownCallback
from rllib_metamapg.callbacks.initial_weights_callback import InitialWeightsCallback

__all__ = ["CooldownCallback", "InitialWeightsCallback"]
