"""Meta-MAPG's tabular update: ``v + w_n * (own_coef * own + peer_coef * peer)``."""

from __future__ import annotations

import torch

from rllib_metamapg.metamapg.method import switches
from rllib_metamapg.tabular.updates import TabularUpdate


class MetaMAPGTabular(TabularUpdate):
    """Each arm switches terms on; ``w_n`` is the lambda schedule on cooled arms, else 1.

    An arm with its own correction form (``lola``) gets its terms in that form; the
    other arms get the run's ``correction_form``.
    """

    def __init__(self, arms, runs, settings):
        super().__init__(arms, runs, settings)
        sw = [switches(a) for a in self.arms]
        self.c_own = self.per_row([settings.own_coef if s.own else 0.0 for s in sw])
        self.c_peer = self.per_row([settings.peer_coef if s.peer else 0.0 for s in sw])
        self.cooled = self.per_row([float(s.cooldown) for s in sw]) > 0
        self.any_corrected = any(s.corrected for s in sw)
        self.all_corrected_cool = all(s.cooldown for s in sw if s.corrected)
        fixed = {s.form for s in sw if s.corrected and s.form not in
                 (None, settings.correction_form)}
        # form -> (rows of the arms that always use it); the rest use the run's form.
        self.fixed = {f: self.per_row([float(s.form == f) for s in sw])[:, 0] > 0
                      for f in sorted(fixed)}
        self.run_form_corrected = any(s.corrected and s.form in (None, settings.correction_form)
                                      for s in sw)

    def direction(self, field, theta, n):
        w = self.settings.schedule(n)
        # Skip the (costly) corrections once every corrected arm has cooled to 0.
        want = self.any_corrected and (w > 0 or not self.all_corrected_cool)
        v, own, peer = field(theta, want and self.run_form_corrected)
        if not want:
            if self.tracing:
                zero = torch.zeros(theta.shape[0], dtype=v.dtype)
                self.last_trace = {"norm_v": v.norm(dim=-1), "norm_own": zero,
                                   "norm_peer": zero, "lambda": zero}
            return v
        if self.fixed:
            own = torch.zeros_like(v) if own is None else own.clone()
            peer = torch.zeros_like(v) if peer is None else peer.clone()
            for form, rows in self.fixed.items():
                own[rows], peer[rows] = field.corrections_in(theta[rows], form)
        dtype = self.settings.torch_dtype
        scale = torch.where(self.cooled, torch.as_tensor(w, dtype=dtype),
                            torch.ones((), dtype=dtype))
        # where, not a product: a term an arm switches off must not bring in a NaN that
        # the correction hits on its rows (e.g. the unroll form at unbounded logits).
        zero = torch.zeros((), dtype=dtype)
        own_t = torch.where(self.c_own != 0, self.c_own * own, zero)
        peer_t = torch.where(self.c_peer != 0, self.c_peer * peer, zero)
        lam = self.settings.player_lambda
        if lam is not None:  # player i's block of the corrections times lambda_i
            m = field.policy.masks(dtype)
            per_param = (torch.as_tensor(lam, dtype=dtype)[:, None] * m).sum(0)
            own_t = torch.where(per_param != 0, per_param * own_t, zero)
            peer_t = torch.where(per_param != 0, per_param * peer_t, zero)
        if self.tracing:  # the applied terms' norms and each row's lambda weight
            sc = scale.expand(theta.shape[0], 1)
            on = ((self.c_own != 0) | (self.c_peer != 0))[:, 0].to(dtype)
            self.last_trace = {"norm_v": v.norm(dim=-1),
                               "norm_own": (sc * own_t).norm(dim=-1),
                               "norm_peer": (sc * peer_t).norm(dim=-1),
                               "lambda": sc[:, 0] * on}
        return v + scale * (own_t + peer_t)
