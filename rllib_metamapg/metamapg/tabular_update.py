"""Meta-MAPG's tabular update: ``v + w_n * (own_coef * own + peer_coef * peer)``."""

from __future__ import annotations

import torch

from rllib_metamapg.metamapg.method import switches
from rllib_metamapg.tabular.updates import TabularUpdate


class MetaMAPGTabular(TabularUpdate):
    """Each arm switches terms on; ``w_n`` is the lambda schedule on cooled arms, else 1."""

    def __init__(self, arms, runs, settings):
        super().__init__(arms, runs, settings)
        sw = [switches(a) for a in self.arms]
        self.c_own = self.per_row([settings.own_coef if s.own else 0.0 for s in sw])
        self.c_peer = self.per_row([settings.peer_coef if s.peer else 0.0 for s in sw])
        self.cooled = self.per_row([float(s.cooldown) for s in sw]) > 0
        self.any_corrected = any(s.corrected for s in sw)
        self.all_corrected_cool = all(s.cooldown for s in sw if s.corrected)

    def direction(self, field, theta, n):
        w = self.settings.schedule(n)
        # Skip the (costly) corrections once every corrected arm has cooled to 0.
        want = self.any_corrected and (w > 0 or not self.all_corrected_cool)
        v, own, peer = field(theta, want)
        if not want:
            return v
        dtype = self.settings.torch_dtype
        scale = torch.where(self.cooled, torch.as_tensor(w, dtype=dtype),
                            torch.ones((), dtype=dtype))
        # where, not a product: a term an arm switches off must not bring in a NaN that
        # the correction hits on its rows (e.g. the unroll form at unbounded logits).
        zero = torch.zeros((), dtype=dtype)
        terms = (torch.where(self.c_own != 0, self.c_own * own, zero)
                 + torch.where(self.c_peer != 0, self.c_peer * peer, zero))
        return v + scale * terms
