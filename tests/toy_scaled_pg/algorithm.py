"""The toy's RLlib side: PPO's loss times ``step_scale``, on the package's RLlib base."""

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.ppo.ppo import PPO
from ray.rllib.utils.annotations import override

from rllib_metamapg.rllib_base.algorithm import PluginAlgorithm
from rllib_metamapg.rllib_base.config import PluginPPOConfig, set_provided
from rllib_metamapg.rllib_base.torch.learner import PluginPPOTorchLearner


class ScaledPGConfig(PluginPPOConfig):
    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or ScaledPG)
        self.step_scale = 1.0

    @override(PluginPPOConfig)
    def training(self, *, step_scale=NotProvided, **kwargs):
        super().training(**kwargs)
        set_provided(self, step_scale=step_scale)
        return self

    @override(PluginPPOConfig)
    def validate(self):
        super().validate()
        if not (isinstance(self.step_scale, (int, float)) and self.step_scale > 0):
            self._value_error(f"ScaledPGConfig: step_scale={self.step_scale!r} must be > 0.")

    @override(PluginPPOConfig)
    def get_default_learner_class(self):
        return ScaledPGTorchLearner


class ScaledPGTorchLearner(PluginPPOTorchLearner):
    @override(PluginPPOTorchLearner)
    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        return config.step_scale * super().compute_loss_for_module(
            module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)


class ScaledPG(PluginAlgorithm, PPO):
    @classmethod
    @override(PPO)
    def get_default_config(cls):
        return ScaledPGConfig()
