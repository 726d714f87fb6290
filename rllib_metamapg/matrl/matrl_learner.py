"""Framework-agnostic part of the MATRL learner: the iteration's order and the meta-game.

One ``update`` of the learner is one MATRL iteration:

1. ``before_gradient_based_update``: snapshot every module's weights theta;
2. PPO's epochs (RLlib's own loop) move them to theta_hat -- the trust-payoff step;
3. ``after_gradient_based_update``: the meta-game from the whole train batch,
   its equilibrium rho, then the mixture or the best response
   (:meth:`MATRLLearner.matrl_step`, framework-specific).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from ray.rllib.algorithms.ppo.ppo_learner import PPOLearner
from ray.rllib.utils.annotations import override

from rllib_metamapg.connectors.peer_columns import AddPeerColumns
from rllib_metamapg.matrl.meta_game import solve_2x2, solve_n
from rllib_metamapg.matrl.method import matrl_arm

BR_OPTIMIZER_STATE_KEY = "matrl_br_optimizers"


class MATRLLearner(PPOLearner):
    """PPO learner running one MATRL iteration per update (see the module docstring)."""

    @override(PPOLearner)
    def build(self) -> None:
        # Nothing here may consume torch RNG before super().build(): paired seeds.
        super().build()
        self.arm = matrl_arm(self.config.arm)
        self._rng = np.random.default_rng(self.config.seed or 0)
        self._train_batch = None
        self._snapshot: Optional[Dict[str, Any]] = None
        self.last_rho: Dict[str, float] = {}
        recurrent = sorted(mid for mid, m in self.module._rl_modules.items()
                           if m.unwrapped().is_stateful())
        if recurrent:
            raise ValueError(f"MATRL: modules {recurrent} are recurrent; the meta-game "
                             "needs per-timestep (non-recurrent) modules. Drop use_lstm "
                             "from the model config.")
        if self._learner_connector is not None and \
                self.config.add_default_connectors_to_learner_pipeline:
            self._learner_connector.append(AddPeerColumns())

    @override(PPOLearner)
    def _make_batch_if_necessary(self, training_data):
        self._train_batch = super()._make_batch_if_necessary(training_data)
        return self._train_batch

    @override(PPOLearner)
    def before_gradient_based_update(self, *, timesteps: Dict[str, Any]) -> None:
        super().before_gradient_based_update(timesteps=timesteps)
        self._snapshot = self.snapshot_weights()

    @override(PPOLearner)
    def after_gradient_based_update(self, *, timesteps: Dict[str, Any]) -> None:
        super().after_gradient_based_update(timesteps=timesteps)
        batch = self._train_batch
        if batch is None or self._snapshot is None:
            return
        mids = sorted(self.module.keys())
        if sorted(batch.policy_batches) != mids:
            raise ValueError(f"MATRL: this update's batch has modules "
                             f"{sorted(batch.policy_batches)}, the learner {mids}; the "
                             "meta-game needs every agent's data in every update.")
        self.matrl_step(mids)
        self._train_batch, self._snapshot = None, None

    def solve_meta_game(self, payoffs: np.ndarray) -> List[float]:
        """rho (P(current)) per agent from ``payoffs`` ``(n, 2, ..., 2)``, or the arm's
        fixed rho."""
        n = payoffs.shape[0]
        if self.arm.rho is not None:
            return [self.arm.rho] * n
        if n == 2:
            r1, r2 = solve_2x2(payoffs[0], payoffs[1], self.config.meta_choice, self._rng)
            return [float(r1), float(r2)]
        rho, _ = solve_n(payoffs, seed=int(self._rng.integers(2**31)))
        return [float(r) for r in rho]

    # Framework-specific.
    def snapshot_weights(self) -> Dict[str, Any]:
        raise NotImplementedError

    def matrl_step(self, module_ids: List[str]) -> None:
        raise NotImplementedError
