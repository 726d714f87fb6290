"""MAPPO's learner: the package's PPO learner (``critic_lr`` included) with the critic's
input added to every batch before GAE."""

from __future__ import annotations

from ray.rllib.algorithms.ppo.ppo_learner import PPOLearner
from ray.rllib.connectors.common.add_observations_from_episodes_to_batch import (
    AddObservationsFromEpisodesToBatch)
from ray.rllib.utils.annotations import override

from rllib_metamapg.mappo.critic_observations import AddCriticObservations
from rllib_metamapg.rllib_base.torch.learner import PluginPPOTorchLearner


class MAPPOTorchLearner(PluginPPOTorchLearner):
    @override(PPOLearner)
    def build(self) -> None:
        super().build()
        if self._learner_connector is not None and \
                self.config.add_default_connectors_to_learner_pipeline:
            self._learner_connector.insert_after(
                AddObservationsFromEpisodesToBatch,
                AddCriticObservations(module_order=sorted(self.module.keys()),
                                      critic_input=self.config.critic_input))
