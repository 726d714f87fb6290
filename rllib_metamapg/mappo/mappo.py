"""``MAPPOConfig`` / ``MAPPO``: the package's PPO base with a centralized critic.

``config.training(critic_input="joint")`` (default) gives each agent's critic every
agent's observation at the same env step, concatenated in sorted module-id order;
``"own"`` gives it the agent's own observation, which makes MAPPO ``ippo`` (a test
checks they train bit for bit alike).  Everything else -- PPO's settings,
``critic_lr``, samplers such as MA-PROPS, one module per agent, paired seeds -- is
the RLlib base's.
"""

from __future__ import annotations

import gymnasium as gym
from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.ppo.ppo import PPO
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.annotations import override

from rllib_metamapg.mappo.critic_observations import CRITIC_INPUTS
from rllib_metamapg.mappo.torch.mappo_rl_module import CRITIC_KEY
from rllib_metamapg.rllib_base.algorithm import PluginAlgorithm, register_on_import
from rllib_metamapg.rllib_base.config import PluginPPOConfig, set_provided


class MAPPOConfig(PluginPPOConfig):
    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or MAPPO)
        self.critic_input = "joint"

    @override(PluginPPOConfig)
    def training(self, *, critic_input=NotProvided, **kwargs) -> "MAPPOConfig":
        """PPO's ``training()`` plus MAPPO's own setting.

        Args:
            critic_input: ``"joint"`` (every agent's observation, in sorted module-id
                order) or ``"own"`` (the agent's own: ``ippo``'s critic).
            **kwargs: The package's PPO ``training`` settings (``critic_lr``,
                ``sampler``, ``behaviour``, ...).
        """
        super().training(**kwargs)
        set_provided(self, critic_input=critic_input)
        return self

    @override(PluginPPOConfig)
    def validate(self) -> None:
        super().validate()
        if self.critic_input not in CRITIC_INPUTS:
            self._value_error(f"MAPPOConfig: critic_input={self.critic_input!r}; choose one "
                              f"of {list(CRITIC_INPUTS)}.")
        if (self.model_config or {}).get("vf_share_layers"):
            self._value_error("MAPPOConfig: vf_share_layers=True shares the actor's layers "
                              "with the critic, whose input is wider; unset it.")
        if (self.model_config or {}).get("use_lstm"):
            self._value_error("MAPPOConfig: use_lstm is not supported (the centralized "
                              "critic is per-timestep); drop it or use ippo.")

    @override(PluginPPOConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from rllib_metamapg.mappo.torch.mappo_rl_module import MAPPOTorchRLModule

        spec = super().get_default_rl_module_spec()
        spec.module_class = MAPPOTorchRLModule
        return spec

    @override(PluginPPOConfig)
    def get_default_learner_class(self):
        from rllib_metamapg.mappo.torch.mappo_torch_learner import MAPPOTorchLearner

        return MAPPOTorchLearner

    @override(PluginPPOConfig)
    def get_multi_rl_module_spec(self, **kwargs):
        spec = super().get_multi_rl_module_spec(**kwargs)
        modules = spec.rl_module_specs
        flat = {}
        for mid, module in modules.items():
            space = module.observation_space
            if not isinstance(space, gym.spaces.Box):
                raise ValueError(f"MAPPO: module {mid!r} observes {space}; the centralized "
                                 "critic concatenates flat (Box) observations.")
            flat[mid] = int(gym.spaces.flatdim(space))
        critic = {"input": self.critic_input, "dim": sum(flat.values()),
                  "seed": self.seed}
        for module in modules.values():
            module.model_config = {**(module.model_config or {}), CRITIC_KEY: critic}
        return spec


class MAPPO(PluginAlgorithm, PPO):
    @classmethod
    @override(PPO)
    def get_default_config(cls) -> MAPPOConfig:
        return MAPPOConfig()


register_on_import(MAPPO)
