"""Torch MetaMAPG learner: PPO loss plus lambda * clip(own + peer) per module."""

from __future__ import annotations

from typing import Any, Dict, Sequence

import torch
import torch.distributed as dist

from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.utils.annotations import override

from rllib_metamapg.rllib_base.torch.learner import PluginPPOTorchLearner
from rllib_metamapg.connectors.peer_columns import (EPISODE_COLUMN, STEP_COLUMN, peer_column,
                                                    peer_module_ids, present_peer_mask)
from rllib_metamapg.metamapg import metrics as M
from rllib_metamapg.metamapg.metamapg_learner import MetaMAPGLearner
from rllib_metamapg.metamapg.torch.corrections import (
    AgentSlice, Corrections, EpisodeLayout, combine, compute_corrections_for)
from rllib_metamapg.rllib_base.torch.module_params import policy_params
from rllib_metamapg.metamapg.torch.joint_rows import joint_slices


class MetaMAPGTorchLearner(MetaMAPGLearner, PluginPPOTorchLearner):
    """Adds the Meta-MAPG own/peer corrections to each module's PPO gradient.

    The correction is a fixed (detached) ascent vector ``d`` per module.  It is
    subtracted from the module's gradient after PPO's backward and before
    gradient clipping -- the gradient of the loss ``PPO - <theta, d>`` without
    pushing that term through the backward pass.  With several learners ``d`` is
    averaged across them first.  With lambda = 0 (``ippo`` arm, or after
    handoff) nothing is added and the update is PPO's, bit for bit.
    """

    @override(PPOTorchLearner)
    def compute_losses(self, *, fwd_out: Dict[str, Any],
                       batch: Dict[str, Any]) -> Dict[str, Any]:
        losses = super().compute_losses(fwd_out=fwd_out, batch=batch)
        self._pending_steps = {}
        if not self.corrections_active:
            if self._peer_columns is not None:  # a corrected arm after its handoff
                self._log_no_correction(losses)
            return losses
        lam = float(self._correction_state["lambda"])
        # Sorted: with several learners every learner must all-reduce the modules'
        # steps in the same order (the batch's module order differs between learners,
        # and a mismatched order averaged one module's step with another's).
        for mid in sorted(losses):
            if self.config.get_config_for_module(mid).correction_granularity == "batch":
                if mid not in self._batch_corrections:
                    self._batch_corrections.update(self._corrections_of_batch(
                        mid, sorted(losses), lam))
                self._pending_steps[mid] = self._batch_corrections[mid]
            else:
                self._pending_steps[mid] = self._correction_for_module(mid, batch[mid], lam)
        return losses

    @override(PPOTorchLearner)
    def compute_gradients(self, loss_per_module, **kwargs):
        grads = super().compute_gradients(loss_per_module, **kwargs)
        for mid, step in self._pending_steps.items():
            # A grad scaler scales the loss, so the step is scaled alike.
            scale = (1.0 if self._grad_scalers is None
                     else float(self._grad_scalers[mid].get_scale()))
            for p, d in step:
                ref = self.get_param_ref(p)
                if grads.get(ref) is None:
                    grads[ref] = -scale * d
                else:  # in place: the gradient tensor is this minibatch's own
                    grads[ref].sub_(d, alpha=scale)
        self._pending_steps = {}
        return grads

    def _log_no_correction(self, module_ids) -> None:
        """lambda 0 and the (zero) applied step, so the curves do not break at the
        handoff.  The estimate's own metrics (norms, cosine, split) are not
        measured without an estimate; RLlib reports them as NaN from then on."""
        for mid in module_ids:
            self.metrics.log_dict({M.LAMBDA: 0.0, M.CORRECTION_NORM: 0.0, M.CLIPPED: 0.0},
                                  key=mid, reduce="mean")

    def last_corrections(self) -> Dict[str, Corrections]:
        """The raw estimates of the latest update per module (objective units,
        before clip and lambda): what the oracle tests compare with the exact engine."""
        return dict(self._last_corrections)

    def _slices(self, mid: str, b: Dict[str, Any]):
        """``(agents, mask, module ids)``: module ``mid`` then its peers on ``b``'s rows."""
        peers = peer_module_ids(b, self.module.keys())
        if not peers or peer_column(0, Columns.ACTIONS) not in b:
            raise ValueError(f"MetaMAPG: module {mid!r} has no peer columns; the "
                             "AddPeerColumns connector must run after GAE (do not set "
                             "add_default_connectors_to_learner_pipeline=False).")
        own = self.module[mid].unwrapped()
        agents = [AgentSlice(own, _leaf_copies(own), {Columns.OBS: b[Columns.OBS]},
                             b[Columns.ACTIONS], b[Columns.ACTION_LOGP],
                             b[Postprocessing.ADVANTAGES])]
        mask = b.get(Columns.LOSS_MASK)
        for k, peer_mid in enumerate(peers):
            peer = self.module[peer_mid].unwrapped()
            agents.append(AgentSlice(
                peer, _leaf_copies(peer), {Columns.OBS: b[peer_column(k, Columns.OBS)]},
                b[peer_column(k, Columns.ACTIONS)], b[peer_column(k, Columns.ACTION_LOGP)],
                b[peer_column(k, Postprocessing.ADVANTAGES)], present_peer_mask(b, k)))
        return agents, mask, [mid] + peers

    def _module_and_params(self, mid: str):
        module = self.module[mid].unwrapped()
        return module, _leaf_copies(module)

    def _estimate(self, mid: str, b: Dict[str, Any], for_ids: Sequence[str],
                  whole_batch: bool = False):
        """Raw corrections of modules ``for_ids`` (``mid`` first): on every agent's
        rows of the whole train batch (``whole_batch``), else on ``mid``'s rows of
        ``b`` with the peers' columns (a minibatch)."""
        cfg = self.config.get_config_for_module(mid)
        arm = self._controller.arm
        if whole_batch:
            ids = [mid] + peer_module_ids(b, self.module.keys())
            agents, valid, layout = joint_slices(
                {m: self.train_batch(m) for m in ids}, ids, self._module_and_params)
            mask = valid
        else:
            agents, mask, ids = self._slices(mid, b)
            valid = (torch.ones_like(b[Columns.ACTIONS], dtype=torch.bool) if mask is None
                     else mask.bool())
            layout = EpisodeLayout(b[EPISODE_COLUMN], b[STEP_COLUMN], valid)
        return compute_corrections_for(
            agents, mask, for_agents=[ids.index(m) for m in for_ids], inner_lr=cfg.inner_lr,
            unroll_length=cfg.unroll_length, form=cfg.correction_form, own=arm.own,
            peer=arm.peer, estimator=cfg.correction_estimator, layout=layout,
            split=cfg.correction_split)

    def _corrections_of_batch(self, mid: str, trained: Sequence[str], lam: float):
        """``{module: step}`` for ``mid`` and every trained peer it can share with.

        Every module's estimate runs the same inner steps of every agent on the same
        joint timesteps, so the modules whose estimator settings agree are estimated
        in one pass on ``mid``'s rows (a peer's columns there are its own rows of the
        same env steps).  Modules in ``trained`` order: with several learners each
        all-reduces the modules' steps in that order.
        """
        b = self.train_batch(mid)
        ids = [mid] + peer_module_ids(b, self.module.keys())
        settings = _estimator_settings(self.config.get_config_for_module(mid))
        share = [mid]
        if len(set(ids)) == len(ids):  # a module playing two agents has no single slot
            share += [m for m in trained
                      if m != mid and m in ids and m not in self._batch_corrections
                      and _estimator_settings(self.config.get_config_for_module(m)) == settings]
        estimates = self._estimate(mid, b, share, whole_batch=True)
        return {m: self._apply(m, corr, lam)
                for m, corr in sorted(zip(share, estimates), key=lambda pair: pair[0])}

    def _correction_for_module(self, mid: str, b: Dict[str, Any], lam: float):
        (corr,) = self._estimate(mid, b, [mid])
        return self._apply(mid, corr, lam)

    def _apply(self, mid: str, corr: Corrections, lam: float):
        """Clip, weigh and log module ``mid``'s raw estimate; its ``(parameter, step)``
        pairs for the gradient."""
        cfg = self.config.get_config_for_module(mid)
        self._last_corrections[mid] = corr
        # The estimate is in the units of its objective (per episode for the
        # trajectory estimator); PPO's loss averages over timesteps, so the step
        # is applied per timestep, and the clip compares it with the per-step PG.
        out = combine(corr.per_step(), own_coef=cfg.own_coef, peer_coef=cfg.peer_coef,
                      lam=lam, clip=cfg.correction_clip)
        out.metrics[M.LAMBDA] = lam
        out.metrics[M.SPLIT] = float(corr.split)
        self.metrics.log_dict(out.metrics, key=mid, reduce="mean")
        # (parameter, step) pairs: the parameters looked up once per estimate, not
        # once per minibatch.
        return list(zip(policy_params(self.module[mid].unwrapped()).values(),
                        _average_over_learners(out.step)))


def _estimator_settings(cfg):
    return (cfg.inner_lr, cfg.unroll_length, cfg.correction_form, cfg.correction_estimator,
            cfg.correction_split)


def _leaf_copies(module):
    """Fresh leaves sharing the storage of the parameters the policy reads.

    The correction's ``autograd.grad`` calls then never touch the live
    parameters, whose autograd hooks belong to DDP when there are several
    learners.  The other parameters (the default module's critic) have no
    correction and get no step.
    """
    return {n: p.detach().requires_grad_(True) for n, p in policy_params(module).items()}


def _average_over_learners(step):
    """Mean of each learner's correction, so every learner applies the same one.

    DDP averages gradients that flow through its hooked backward; the correction
    is estimated with ``autograd.grad`` on each learner's own data shard, and
    measured learners drifted apart without this explicit all-reduce.  Every
    learner reaches this point for the same modules in the same order.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return step
    flat = torch.cat([d.reshape(-1) for d in step])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    out, at = [], 0
    for d in step:
        out.append(flat[at:at + d.numel()].view_as(d))
        at += d.numel()
    return out
