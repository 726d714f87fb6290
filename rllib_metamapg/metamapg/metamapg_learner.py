"""Framework-agnostic part of the MetaMAPG learner: lambda state and peer columns."""

from __future__ import annotations

from typing import Any, Dict, Optional

from ray.rllib.algorithms.ppo.ppo_learner import PPOLearner
from ray.rllib.policy.sample_batch import MultiAgentBatch
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

from rllib_metamapg.connectors.peer_columns import ADDED_COLUMN_PREFIX, AddPeerColumns

CORRECTION_STATE_KEY = "metamapg_correction"


class MetaMAPGLearner(PPOLearner):
    """PPO learner that carries the correction strength lambda and its phase.

    The state (``lambda``, ``phase``, ``handoff_at``, ``streak``) is advanced from
    the lifetime env-step count before each update, can be overwritten by the
    ``CooldownCallback`` (statistic trigger), and is part of ``get_state()`` so it
    survives checkpoint save/restore.
    """

    @override(PPOLearner)
    def build(self) -> None:
        # Nothing here may consume torch RNG before super().build(): paired seeds.
        super().build()
        self._controller = self.config.cooldown_controller()
        self._correction_state = self._controller.initial_state()
        self._peer_columns: Optional[AddPeerColumns] = None
        self._batch_corrections: Dict[str, Any] = {}
        # Each module's correction step for the gradients of the current minibatch.
        self._pending_steps: Dict[str, Any] = {}
        self._last_corrections: Dict[str, Any] = {}
        self._train_batch = None
        if self._controller.arm.corrected:
            recurrent = sorted(mid for mid, m in self.module._rl_modules.items()
                               if m.unwrapped().is_stateful())
            if recurrent:
                raise ValueError(
                    f"MetaMAPG: modules {recurrent} are recurrent; the corrections need "
                    "per-timestep (non-recurrent) modules. Use arm='ippo' or drop "
                    "use_lstm from the model config.")
        if (self._controller.arm.corrected and self._learner_connector is not None
                and self.config.add_default_connectors_to_learner_pipeline):
            self._peer_columns = AddPeerColumns()
            self._learner_connector.append(self._peer_columns)

    def get_correction_state(self) -> Dict[str, Any]:
        """lambda, phase, handoff time and statistic streak (a copy)."""
        return dict(self._correction_state)

    def set_correction_state(self, state: Dict[str, Any]) -> None:
        """Overwrites the correction state (from the callback or a checkpoint)."""
        self._correction_state = dict(state)

    @property
    def corrections_active(self) -> bool:
        """True when this update adds corrections (lambda > 0)."""
        return self._peer_columns is not None and self._correction_state["lambda"] > 0.0

    @override(PPOLearner)
    def before_gradient_based_update(self, *, timesteps: Dict[str, Any]) -> None:
        super().before_gradient_based_update(timesteps=timesteps)
        steps = timesteps.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, 0) or 0
        self._correction_state = self._controller.advance(self._correction_state, steps)
        # Per-update cache for correction_granularity="batch" (filled lazily on the
        # first minibatch, once the connector pipeline has built this update's batch).
        self._batch_corrections = {}

    @override(PPOLearner)
    def _make_batch_if_necessary(self, training_data):
        # The whole train batch of this update, before minibatching: the "batch"
        # granularity estimates the corrections on it once, at the pre-update weights.
        self._train_batch = super()._make_batch_if_necessary(training_data)
        if self._peer_columns is None or any(
                self.config.get_config_for_module(mid).correction_granularity != "batch"
                for mid in self._train_batch.policy_batches):
            return self._train_batch
        # Every module's correction comes from this whole batch, so the minibatches
        # PPO iterates over need none of the peer columns; without them its per-epoch
        # shuffling and slicing costs what it costs ippo.
        return MultiAgentBatch(
            {mid: _without_peer_columns(b) for mid, b in self._train_batch.policy_batches.items()},
            env_steps=self._train_batch.env_steps())

    def train_batch(self, module_id: str) -> Dict[str, Any]:
        """This update's whole train batch of one module (peer columns included)."""
        return self._train_batch.policy_batches[module_id]

    @override(PPOLearner)
    def get_state(self, components=None, *, not_components=None, **kwargs):
        state = super().get_state(components, not_components=not_components, **kwargs)
        state[CORRECTION_STATE_KEY] = self.get_correction_state()
        return state

    @override(PPOLearner)
    def set_state(self, state) -> None:
        super().set_state(state)
        if CORRECTION_STATE_KEY in state:
            self.set_correction_state(state[CORRECTION_STATE_KEY])


def _without_peer_columns(batch):
    """A shallow copy of one module's ``SampleBatch`` without AddPeerColumns' columns."""
    out = batch.copy(shallow=True)
    for key in [k for k in out.keys() if k.startswith(ADDED_COLUMN_PREFIX)]:
        del out[key]
    return out
