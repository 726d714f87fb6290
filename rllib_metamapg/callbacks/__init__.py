"""RLlib callbacks every method shares (a method's own live in its folder, e.g.
``rllib_metamapg.metamapg.cooldown_callback``)."""

from rllib_metamapg.callbacks.initial_weights_callback import InitialWeightsCallback
from rllib_metamapg.callbacks.on_target_callback import OnTargetCallback

__all__ = ["InitialWeightsCallback", "OnTargetCallback"]
