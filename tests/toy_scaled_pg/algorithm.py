"""The toy method's RLlib pieces: a config class in RLlib's style, the algorithm, a learner."""

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.ppo.ppo import PPO, PPOConfig
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.utils.annotations import override

from rllib_metamapg.rllib_plugin import PluginAlgorithm


class ScaledPGConfig(PPOConfig):
    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or ScaledPG)
        self.step_scale = 1.0

    @override(PPOConfig)
    def training(self, *, step_scale=NotProvided, **kwargs):
        super().training(**kwargs)
        if step_scale is not NotProvided:
            self.step_scale = step_scale
        return self

    @override(PPOConfig)
    def validate(self):
        super().validate()
        if not (isinstance(self.step_scale, (int, float)) and self.step_scale > 0):
            self._value_error(f"ScaledPGConfig: step_scale={self.step_scale!r} must be > 0.")

    @override(PPOConfig)
    def get_default_learner_class(self):
        return ScaledPGTorchLearner


class ScaledPGTorchLearner(PPOTorchLearner):
    @override(PPOTorchLearner)
    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        loss = super().compute_loss_for_module(module_id=module_id, config=config,
                                               batch=batch, fwd_out=fwd_out)
        return config.step_scale * loss


class ScaledPG(PluginAlgorithm, PPO):
    @classmethod
    @override(PPO)
    def get_default_config(cls):
        return ScaledPGConfig()
