"""Torch MATRL learner: the meta-game from the train batch, then the mixture or best response.

Per-row quantities, for agent i's rows of the train batch (peers aligned by the
peer-column connector): the behaviour log-probability ``log pi_j`` of every
agent's action (``ACTION_LOGP``), its log-probability ``log pi_hat_j`` after
PPO's epochs, and agent i's advantage ``A_i``.

* Meta-game payoff of profile sigma (1 = predicted):
  ``g_i(sigma) = mean_t[(prod_{j: sigma_j = 1} pi_hat_j / pi_j - 1) A_i]``,
  so ``g_i(current, ..., current) = 0`` exactly.
* Peer weight of agent i: ``c = clip(prod_{j != i} pi_bar_j / pi_j, 1 - br_clip,
  1 + br_clip)`` with ``pi_bar_j / pi_j = rho_j + (1 - rho_j) pi_hat_j / pi_j``
  (probability mixture) or the policy at the parameter mixture.
* Best response: ``br_iters`` Adam steps from theta_hat (``br_start``) on
  ``-mean[(c - 1) * PPO surrogate]`` (``br_objective="correction"``) or
  ``-mean[c * PPO surrogate]`` (``"full"``), each on ``br_minibatch_size`` rows.
"""

from __future__ import annotations

import itertools
from typing import Any, Dict, List

import numpy as np
import torch
from torch.func import functional_call

from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.utils.annotations import override

from rllib_metamapg.rllib_base.torch.learner import PluginPPOTorchLearner
from rllib_metamapg.connectors.peer_columns import (PEER_ROW, ROW_COLUMN, peer_column,
                                                    peer_module_ids, present_peer_mask)
from rllib_metamapg.matrl import metrics as M
from rllib_metamapg.matrl.matrl_learner import BR_OPTIMIZER_STATE_KEY, MATRLLearner
from rllib_metamapg.rllib_base.torch.module_params import trainable_params


def _logp(module, obs, actions, params=None) -> torch.Tensor:
    batch = {Columns.OBS: obs}
    out = (module.forward_train(batch) if params is None
           else functional_call(module, params, (batch,)))
    dist = module.get_train_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
    return dist.logp(actions)


def _where_present(x: torch.Tensor, present, fill: float) -> torch.Tensor:
    """``x`` where the agent acted, ``fill`` (no effect) where it did not."""
    return x if present is None else torch.where(present, x, torch.full_like(x, fill))


def _norm(a: Dict[str, torch.Tensor], b: Dict[str, torch.Tensor]) -> float:
    return float(torch.sqrt(sum(((a[n] - b[n]) ** 2).sum() for n in a)))


class MATRLTorchLearner(MATRLLearner, PluginPPOTorchLearner):
    """See the module docstring; PPO's own loss and epochs are untouched."""

    @override(PPOTorchLearner)
    def build(self) -> None:
        super().build()
        self._br_optimizers: Dict[str, torch.optim.Optimizer] = {}
        self._br_generator = torch.Generator().manual_seed(int(self.config.seed or 0))

    def snapshot_weights(self) -> Dict[str, Dict[str, torch.Tensor]]:
        return {mid: {n: p.detach().clone()
                      for n, p in trainable_params(self.module[mid].unwrapped()).items()}
                for mid in self.module.keys()}

    # ----------------------------------------------------------------- per row
    def _row_quantities(self, mids: List[str]):
        """Per module, in the batch's original row order: behaviour and predicted
        log-probabilities (``(rows,)`` each)."""
        old, hat = {}, {}
        with torch.no_grad():
            for mid in mids:
                b = self._train_batch.policy_batches[mid]
                rows = b[ROW_COLUMN]
                module = self.module[mid].unwrapped()
                lp = _logp(module, b[Columns.OBS], b[Columns.ACTIONS])
                old[mid] = torch.empty_like(lp).index_put((rows,), b[Columns.ACTION_LOGP])
                hat[mid] = torch.empty_like(lp).index_put((rows,), lp)
        return old, hat

    def _agents_on_rows(self, mid: str, b, mids: List[str]):
        """``[(module id, row index into its original order, present or None)]`` for
        mid's rows, own first.  A peer that did not act at a row's env step (it had
        ended) is not present there: its ratio counts as 1."""
        out = [(mid, b[ROW_COLUMN], None)]
        for k, peer in enumerate(peer_module_ids(b, mids)):
            out.append((peer, b[peer_column(k, PEER_ROW)], present_peer_mask(b, k)))
        return out

    def _valid(self, b) -> torch.Tensor:
        mask = b.get(Columns.LOSS_MASK)
        return (torch.ones_like(b[Columns.ACTION_LOGP], dtype=torch.bool) if mask is None
                else mask.bool())

    # -------------------------------------------------------------- iteration
    def matrl_step(self, mids: List[str]) -> None:
        n = len(mids)
        batches = self._train_batch.policy_batches
        theta = self._snapshot
        theta_hat = self.snapshot_weights()
        old, hat = self._row_quantities(mids)
        log_ratio = {mid: hat[mid] - old[mid] for mid in mids}
        # Meta-game payoffs: payoffs[i][sigma] with sigma in sorted-module order.
        payoffs = np.zeros((n,) + (2,) * n)
        profiles = list(itertools.product((0, 1), repeat=n))
        for i, mid in enumerate(mids):
            b = batches[mid]
            valid = self._valid(b)
            adv = b[Postprocessing.ADVANTAGES]
            lr_rows = {j: _where_present(log_ratio[j][idx], here, 0.0)
                       for j, idx, here in self._agents_on_rows(mid, b, mids)}
            stacked = torch.stack([lr_rows[j] for j in mids])  # (n, rows)
            for sigma in profiles:
                sel = torch.tensor(sigma, dtype=stacked.dtype, device=stacked.device)
                w = torch.exp((sel[:, None] * stacked).sum(0)) - 1.0
                g = float((w * adv)[valid].mean()) if bool(valid.any()) else 0.0
                payoffs[(i,) + sigma] = g
                self.metrics.log_value((mid, M.meta_payoff_key(sigma)), g, window=1)
        rho = self.solve_meta_game(payoffs)
        # For inspection (tests, notebooks): this iteration's theta_hat, payoffs and rho.
        self.last_theta_hat, self.last_meta_payoffs = theta_hat, payoffs
        self.last_rho = dict(zip(mids, rho))
        for mid, r in zip(mids, rho):
            self.metrics.log_value((mid, M.RHO), r, window=1)
            self.metrics.log_value((mid, M.TRUST_STEP_NORM),
                                   _norm(theta_hat[mid], theta[mid]), window=1)
        if not self.arm.best_response:
            self._move_to_mixture(mids, rho, theta, theta_hat)
            return
        mixed_ratio = self._mixture_ratios(mids, rho, theta, theta_hat, old, log_ratio)
        for mid in mids:
            self._best_response(mid, mids, rho, mixed_ratio, theta[mid])
            self._log_step_from(mid, theta_hat[mid])

    def _log_step_from(self, mid: str, theta_hat) -> None:
        """``|theta' - theta_hat|``: how far the best response (or the mixing) moved."""
        now = {k: p.detach() for k, p in trainable_params(self.module[mid].unwrapped()).items()}
        self.metrics.log_value((mid, M.BR_STEP_NORM), _norm(now, theta_hat), window=1)

    def _move_to_mixture(self, mids, rho, theta, theta_hat) -> None:
        with torch.no_grad():
            for mid, r in zip(mids, rho):
                for name, p in trainable_params(self.module[mid].unwrapped()).items():
                    p.copy_(r * theta[mid][name] + (1.0 - r) * theta_hat[mid][name])
                self._log_step_from(mid, theta_hat[mid])

    def _mixture_ratios(self, mids, rho, theta, theta_hat, old, log_ratio):
        """Per module, in original row order: ``pi_bar_j / pi_j`` of its own action."""
        out = {}
        with torch.no_grad():
            for mid, r in zip(mids, rho):
                if self.config.mixture_space == "probability" or r in (0.0, 1.0):
                    out[mid] = r + (1.0 - r) * torch.exp(log_ratio[mid])
                    continue
                b = self._train_batch.policy_batches[mid]
                module = self.module[mid].unwrapped()
                mixed = {k: r * theta[mid][k] + (1.0 - r) * theta_hat[mid][k]
                         for k in theta[mid]}
                lp = _logp(module, b[Columns.OBS], b[Columns.ACTIONS], mixed)
                out[mid] = torch.exp(torch.empty_like(lp).index_put(
                    (b[ROW_COLUMN],), lp) - old[mid])
        return out

    def _best_response(self, mid, mids, rho, mixed_ratio, theta) -> None:
        cfg = self.config.get_config_for_module(mid)
        i = mids.index(mid)
        full = cfg.br_objective == "full"
        if not full and all(r == 1.0 for j, r in enumerate(rho) if j != i):
            return  # peers keep their policies: the correction objective is 0
        module = self.module[mid].unwrapped()
        if cfg.br_start == "current":
            with torch.no_grad():
                for name, p in trainable_params(module).items():
                    p.copy_(theta[name])
        b = self._train_batch.policy_batches[mid]
        valid = self._valid(b)
        c = torch.ones_like(b[Columns.ACTION_LOGP])
        for j, idx, here in self._agents_on_rows(mid, b, mids)[1:]:
            c = c * _where_present(mixed_ratio[j][idx], here, 1.0)
        if cfg.br_weight == "current_over_mixture":
            c = 1.0 / c
        if cfg.br_clip is not None:
            clipped = c.clamp(1.0 - cfg.br_clip, 1.0 + cfg.br_clip)
            share = float((clipped != c)[valid].float().mean()) if bool(valid.any()) else 0.0
            c = clipped
        else:
            share = 0.0
        self.metrics.log_value((mid, M.BR_WEIGHT_CLIPPED), share, window=1)
        weight = c if full else c - 1.0
        params = list(trainable_params(module).values())
        opt = self._br_optimizers.get(mid)
        if opt is None:
            opt = self._br_optimizers[mid] = torch.optim.Adam(params,
                                                              lr=cfg.effective_br_lr)
        rows = int(valid.shape[0])
        size = cfg.br_minibatch_size or cfg.minibatch_size or rows
        order = torch.randperm(rows, generator=self._br_generator).to(valid.device)
        at = 0
        for _ in range(cfg.br_iters):
            if at + min(size, rows) > rows:
                order = torch.randperm(rows, generator=self._br_generator).to(valid.device)
                at = 0
            idx = order[at:at + min(size, rows)]
            at += len(idx)
            keep = valid[idx]
            if not bool(keep.any()):
                continue
            idx = idx[keep]
            logp = _logp(module, b[Columns.OBS][idx], b[Columns.ACTIONS][idx])
            ratio = torch.exp(logp - b[Columns.ACTION_LOGP][idx])
            adv = b[Postprocessing.ADVANTAGES][idx]
            surrogate = torch.minimum(
                ratio * adv,
                ratio.clamp(1.0 - cfg.clip_param, 1.0 + cfg.clip_param) * adv)
            loss = -(weight[idx] * surrogate).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()

    # ---------------------------------------------------------- checkpointing
    @override(PPOTorchLearner)
    def get_state(self, components=None, *, not_components=None, **kwargs):
        state = super().get_state(components, not_components=not_components, **kwargs)
        state[BR_OPTIMIZER_STATE_KEY] = {mid: opt.state_dict()
                                         for mid, opt in self._br_optimizers.items()}
        return state

    @override(PPOTorchLearner)
    def set_state(self, state: Dict[str, Any]) -> None:
        super().set_state(state)
        for mid, opt_state in (state.get(BR_OPTIMIZER_STATE_KEY) or {}).items():
            params = list(trainable_params(self.module[mid].unwrapped()).values())
            opt = self._br_optimizers[mid] = torch.optim.Adam(params)
            opt.load_state_dict(opt_state)
