"""Statistics used by the reports: Wilson intervals and paired McNemar tests."""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

import numpy as np
from statsmodels.stats.contingency_tables import mcnemar as _mcnemar
from statsmodels.stats.proportion import proportion_confint


def wilson_ci(successes: int, n: int, alpha: float = 0.05) -> Tuple[float, float]:
    """Wilson score interval for a binomial proportion, as fractions."""
    if n <= 0:
        raise ValueError("wilson_ci: n must be positive.")
    lo, hi = proportion_confint(int(successes), int(n), alpha=alpha, method="wilson")
    return float(lo), float(hi)


def mcnemar_paired(a: Sequence[bool], b: Sequence[bool]) -> Dict[str, float]:
    """Exact McNemar test of paired binary outcomes (same seeds in both arms).

    Returns:
        ``{"b_only": arm a failed and b succeeded, "a_only": ..., "p_value": ...}``,
        where the test statistic uses the discordant pairs only.
    """
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError("mcnemar_paired: outcomes must be paired (same length).")
    table = np.array([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]])
    a_only, b_only = int(table[0, 1]), int(table[1, 0])
    p = 1.0 if a_only + b_only == 0 else float(_mcnemar(table, exact=True).pvalue)
    return {"a_only": a_only, "b_only": b_only, "p_value": p}


def vs_reference_cell(vs) -> str:
    """A table cell for a paired test against the reference arm: ``+gained/-lost,
    p=...`` (``vs`` holds ``gained``, ``lost`` and ``mcnemar_p``), empty for none."""
    if not vs:
        return ""
    return f"+{vs['gained']}/-{vs['lost']}, p={vs['mcnemar_p']:.2g}"
