"""What a method's tabular update is: the contract :func:`~.dynamics.simulate` runs.

A run holds every arm of every method in one batch of ``len(arms) * runs``
learners.  ``simulate`` groups the arms by method and asks each method's
:class:`TabularUpdate` for the ascent direction of its rows; it then applies the
shared step size ``alpha_n`` and the logit bound to all rows alike, so methods
differ only in their direction.  The :class:`~.dynamics.FieldProvider` gives
exact or sampled estimates (mode and estimator are run settings, not method
choices), so one update class serves both modes.
"""

from __future__ import annotations

from typing import Dict, Sequence

import torch

from rllib_metamapg.registry import ArmSpec


class TabularUpdate:
    """One method's learners in a batched tabular run.

    Args:
        arms: This method's arms in the run, in batch order.
        runs: Learners per arm (rows ``k * runs ... (k + 1) * runs`` are arm ``k``).
        settings: The run's :class:`~.dynamics.LearningSettings`.
    """

    def __init__(self, arms: Sequence[ArmSpec], runs: int, settings):
        self.arms = list(arms)
        self.runs = runs
        self.settings = settings
        # Per-row quantities of the latest direction (e.g. the norms of its terms), for
        # ``simulate(trace=True)`` (which sets ``tracing``); a method fills in what it
        # has, keyed by name.
        self.tracing = False
        self.last_trace: Dict[str, torch.Tensor] = {}

    def per_row(self, values: Sequence[float]) -> torch.Tensor:
        """``(len(arms) * runs, 1)`` column with ``values[k]`` on arm ``k``'s rows."""
        return torch.tensor(list(values), dtype=self.settings.torch_dtype
                            ).repeat_interleave(self.runs)[:, None]

    def direction(self, field, theta: torch.Tensor, n: int) -> torch.Tensor:
        """Ascent direction of these rows at outer step ``n``.

        Args:
            field: ``field(theta, want_corrections)`` -> ``(v, own, peer)``: the
                policy gradient and, when asked, the own/peer look-ahead terms
                (``None`` when not asked); ``field.values`` is the game's
                :class:`~.values.GameValues` for anything else.
            theta: ``(rows, D)`` parameters of this method's learners.
            n: Outer step counter (for schedules).
        """
        raise NotImplementedError
