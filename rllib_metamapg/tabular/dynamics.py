"""The learning loop: every arm and every initial condition in one batch.

``simulate`` runs ``len(arms) * R0`` independent learners at once.  All arms
start from the same ``theta0`` rows (paired initial conditions); in sampled
mode each learner draws its own episodes.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, List, Optional, Sequence

import torch

from rllib_metamapg.arms import Arm
from rllib_metamapg.schedules import LambdaSchedule, StepSize, check_summable
from rllib_metamapg.tabular.exact import ExactEngine
from rllib_metamapg.tabular.normal_form import NormalFormTaylor
from rllib_metamapg.tabular.policies import TabularPolicy
from rllib_metamapg.tabular.sampled import SampledEstimator
from rllib_metamapg.tabular.values import GameValues

MODES = ("exact", "sampled")
FORMS = ("taylor", "unroll")


class SettingsError(ValueError):
    """Raised for invalid learning settings; the message names the field."""


@dataclasses.dataclass(frozen=True)
class LearningSettings:
    """Everything that defines a tabular learning run except game and arms.

    Defaults are the paper's tabular settings (see ``docs/tabular.md``).
    """

    mode: str = "sampled"
    correction: str = "taylor"
    unroll_length: int = 1
    steps: int = 140
    step_size: StepSize = StepSize(0.9, power=0.24, offset=10.0)
    inner_lr: float = 0.55
    own_coef: float = 0.35
    peer_coef: float = 1.5
    batch_size: int = 192
    # Whole-episode REINFORCE products reproduce the paper's IPD numbers; causal
    # DiCE has lower variance (stronger peer effect in IPD). One-shot games: same.
    estimator: str = "reinforce"
    clip: Optional[float] = 8.0
    temperature: float = 0.0
    policy: str = "bernoulli"
    schedule: LambdaSchedule = LambdaSchedule("hard", handoff=100)
    allow_nonsummable: bool = False
    dtype: str = "float64"

    def validate(self) -> None:
        if self.mode not in MODES:
            raise SettingsError(f"mode={self.mode!r} is unknown; choose one of {MODES}.")
        if self.correction not in FORMS:
            raise SettingsError(f"correction={self.correction!r} is unknown; choose one "
                                f"of {FORMS}.")
        _positive_int("unroll_length", self.unroll_length)
        _positive_int("steps", self.steps)
        _positive_int("batch_size", self.batch_size)
        for name in ("inner_lr", "own_coef", "peer_coef", "temperature"):
            x = getattr(self, name)
            if not isinstance(x, (int, float)) or x != x or x in (float("inf"), float("-inf")):
                raise SettingsError(f"{name}={x!r} must be a finite number.")
            if x < 0:
                raise SettingsError(f"{name}={x!r} must be >= 0.")
        if self.clip is not None and not self.clip > 0:
            raise SettingsError(f"clip={self.clip!r} must be > 0 (or None for no clip).")
        if self.estimator not in SampledEstimator.ESTIMATORS:
            raise SettingsError(f"estimator={self.estimator!r} is unknown; choose one of "
                                f"{SampledEstimator.ESTIMATORS}.")
        if self.dtype not in ("float32", "float64"):
            raise SettingsError(f"dtype={self.dtype!r} must be 'float32' or 'float64'.")
        check_summable(self.step_size.power, self.schedule, self.allow_nonsummable,
                       step_desc=f"alpha_n = {self.step_size.alpha0:g}/(n + "
                       f"{self.step_size.offset:g})^{self.step_size.power:g}")

    @property
    def torch_dtype(self):
        return getattr(torch, self.dtype)


def _positive_int(name, x):
    if not isinstance(x, int) or isinstance(x, bool) or x < 1:
        raise SettingsError(f"{name}={x!r} must be a positive integer.")


class FieldProvider:
    """Computes ``(v, own, peer)`` for a batch of parameters in the chosen mode."""

    def __init__(self, game, settings: LearningSettings, generator: torch.Generator):
        self.settings = settings
        self.policy = TabularPolicy.for_game(game, settings.policy)
        self.values = GameValues(game, self.policy, settings.temperature,
                                 dtype=settings.torch_dtype)
        self.exact = ExactEngine(self.values)
        self.fast = None if self.values.repeated else NormalFormTaylor(self.values)
        self.sampler = (SampledEstimator(self.values, generator, settings.estimator)
                        if settings.mode == "sampled" else None)

    def __call__(self, theta: torch.Tensor, want_corrections: bool = True):
        s = self.settings
        eta = s.inner_lr
        if s.mode == "exact":
            if s.correction == "taylor" and self.fast is not None:
                return self.fast.compute(theta, eta, want_corrections)
            v = self.exact.field(theta)
            if not want_corrections:
                return v, None, None
            own, peer = self.exact.corrections(theta, eta, s.correction, s.unroll_length)
            return v, own, peer
        if s.correction == "unroll" and want_corrections:
            return self.sampler.unroll(theta, s.batch_size, eta, s.unroll_length)
        return self.sampler.sample_taylor(theta, s.batch_size, eta, want_corrections)


@dataclasses.dataclass
class SimulationResult:
    """Final (and optionally recorded) parameters of a batched run.

    Attributes:
        arms: Arm names, in batch order.
        theta: ``(A, R0, D)`` final parameters.
        policy: The joint policy (to read probabilities).
        history: Optional ``(steps + 1, A, R0, D)`` parameter trajectory.
    """

    arms: List[str]
    theta: torch.Tensor
    policy: TabularPolicy
    history: Optional[torch.Tensor] = None

    def start_coop(self, theta: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``(A, R0, N)`` probability of action 0 in the start state per player."""
        th = self.theta if theta is None else theta
        return torch.stack([self.policy.probs(th, i)[..., 0, 0]
                            for i in range(self.policy.num_players)], -1)

    def success(self, threshold: float) -> torch.Tensor:
        """``(A, R0)`` bool: every player cooperates with probability >= threshold."""
        return self.start_coop().min(-1).values >= threshold


def simulate(game, arms: Sequence[Arm], theta0: torch.Tensor, settings: LearningSettings,
             seed: int = 0, record: bool = False,
             progress: Optional[Callable[[int, int], None]] = None,
             start_step: int = 0, stacked: bool = False) -> SimulationResult:
    """Runs every arm from every row of ``theta0`` ``(R0, D)`` for ``settings.steps``.

    With ``stacked=True``, ``theta0`` is ``(A, R0, D)``: one start per arm (to
    continue earlier runs).  ``start_step`` offsets the step counter n, so step
    sizes and lambda schedules continue where an earlier run stopped.

    The update of a learner of arm ``a`` at step ``n`` is
    ``theta += alpha_n * (v + w_n * (own_coef * own + peer_coef * peer))`` with
    the terms the arm switches on, ``w_n`` the lambda schedule for cooled arms
    (1 otherwise), followed by clipping to ``[-clip, clip]``.
    """
    settings.validate()
    dtype = settings.torch_dtype
    gen = torch.Generator().manual_seed(int(seed))
    provider = FieldProvider(game, settings, gen)
    if theta0.shape[-1] != provider.policy.dim:
        raise SettingsError(f"theta0 has {theta0.shape[-1]} parameters per run; this "
                            f"game/policy needs {provider.policy.dim}.")
    a = len(arms)
    if stacked:
        if theta0.dim() != 3 or theta0.shape[0] != a:
            raise SettingsError(f"stacked theta0 must be (arms={a}, runs, D), got "
                                f"{tuple(theta0.shape)}.")
        r0 = theta0.shape[1]
        theta = theta0.to(dtype).reshape(a * r0, -1)
    else:
        r0 = theta0.shape[0]
        theta = theta0.to(dtype).repeat(a, 1)
    c_own = torch.tensor([settings.own_coef if arm.own else 0.0 for arm in arms],
                         dtype=dtype).repeat_interleave(r0)[:, None]
    c_peer = torch.tensor([settings.peer_coef if arm.peer else 0.0 for arm in arms],
                          dtype=dtype).repeat_interleave(r0)[:, None]
    cooled = torch.tensor([arm.cooldown for arm in arms]).repeat_interleave(r0)[:, None]
    any_corr = any(arm.corrected for arm in arms)
    history = [theta.clone()] if record else None
    for n in range(start_step, start_step + settings.steps):
        w = settings.schedule(n)
        want = any_corr and (w > 0 or not all(arm.cooldown for arm in arms if arm.corrected))
        v, own, peer = provider(theta, want)
        update = v
        if want:
            scale = torch.where(cooled, torch.as_tensor(w, dtype=dtype),
                                torch.ones((), dtype=dtype))
            update = v + scale * (c_own * own + c_peer * peer)
        theta = theta + settings.step_size(n) * update
        if settings.clip is not None:
            theta = theta.clamp(-settings.clip, settings.clip)
        if record:
            history.append(theta.clone())
        if progress is not None:
            progress(n + 1 - start_step, settings.steps)
    d = theta.shape[-1]
    hist = torch.stack(history).view(-1, a, r0, d) if record else None
    return SimulationResult([arm.name for arm in arms], theta.view(a, r0, d),
                            provider.policy, hist)
