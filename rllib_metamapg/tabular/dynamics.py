"""The learning loop: every arm and every initial condition in one batch.

``simulate`` runs ``len(arms) * R0`` independent learners at once.  All arms
start from the same ``theta0`` rows (paired initial conditions); in sampled
mode each learner draws its own episodes.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Optional, Sequence

import torch

from rllib_metamapg.forms import TABULAR_ONLY_FORMS
from rllib_metamapg.registry import ArmSpec, method_of, arm_for_engine
from rllib_metamapg.tabular.exact import ExactEngine
from rllib_metamapg.tabular.normal_form import NormalFormTaylor
from rllib_metamapg.tabular.policies import TabularPolicy
from rllib_metamapg.tabular.sampled import SampledEstimator
from rllib_metamapg.tabular.settings import FORMS, MODES, LearningSettings, SettingsError
from rllib_metamapg.tabular.values import GameValues

class FieldProvider:
    """Computes ``(v, own, peer)`` for a batch of parameters in the chosen mode."""

    def __init__(self, game, settings: LearningSettings, generator: torch.Generator,
                 sampler: str = "on_policy", behaviour=None):
        if sampler != "on_policy" and settings.mode != "sampled":
            raise SettingsError(f"sampler={sampler!r} draws the batches of sampled mode; "
                                "mode='exact' draws none. Use mode='sampled' for "
                                "compositions such as 'peer_only+ma_props'.")
        self.settings = settings
        self.policy = TabularPolicy.for_game(game, settings.parameterization)
        self.values = GameValues(game, self.policy, settings.temperature,
                                 dtype=settings.torch_dtype)
        self.exact = ExactEngine(self.values)
        self.fast = None if self.values.repeated else NormalFormTaylor(self.values)
        self.sampler = (SampledEstimator(self.values, generator, settings.estimator,
                                         sampler, behaviour)
                        if settings.mode == "sampled" else None)

    def __call__(self, theta: torch.Tensor, want_corrections: bool = True):
        s = self.settings
        eta = s.inner_lr
        if s.mode == "exact":
            if s.correction_form == "taylor" and self.fast is not None:
                return self.fast.compute(theta, eta, want_corrections)
            if (s.correction_form == "unroll" and s.unroll_length == 1 and want_corrections
                    and self.fast is not None):
                return self.fast.compute_unroll1(theta, eta)
            v = self.exact.field(theta)
            if not want_corrections:
                return v, None, None
            own, peer = self.exact.corrections(theta, eta, s.correction_form, s.unroll_length)
            return v, own, peer
        if s.correction_form == TABULAR_ONLY_FORMS[0] and want_corrections:  # lola
            return self.sampler.lola(theta, s.batch_size, eta)
        if s.correction_form == "unroll" and want_corrections:
            return self.sampler.unroll(theta, s.batch_size, eta, s.unroll_length)
        return self.sampler.sample_taylor(theta, s.batch_size, eta, want_corrections)

    def corrections_in(self, theta: torch.Tensor, form: str):
        """``(own, peer)`` in ``form`` whatever the run's ``correction_form`` (for an arm
        that always uses one form, e.g. ``lola``)."""
        s = self.settings
        if s.mode == "exact":
            return self.exact.corrections(theta, s.inner_lr, form, s.unroll_length)
        if form == "unroll":
            return self.sampler.unroll(theta, s.batch_size, s.inner_lr, s.unroll_length)[1:]
        if form == TABULAR_ONLY_FORMS[0]:  # lola
            return self.sampler.lola(theta, s.batch_size, s.inner_lr)[1:]
        return self.sampler.sample_taylor(theta, s.batch_size, s.inner_lr)[1:]


@dataclasses.dataclass
class SimulationResult:
    """Final (and optionally recorded) parameters of a batched run.

    Attributes:
        arms: Arm names, in batch order.
        theta: ``(A, R0, D)`` final parameters.
        policy: The joint policy (to read probabilities).
        history: Optional ``(steps + 1, A, R0, D)`` parameter trajectory.
        trace: Optional ``{name: (steps, A, R0)}``: ``step_size`` (alpha_n),
            ``norm_update`` (``|d_n|``) and what each method reports per step
            (Meta-MAPG: ``norm_v``, ``norm_own``, ``norm_peer``, ``lambda``; NaN on
            rows of a method that does not report it).
    """

    arms: List[str]
    theta: torch.Tensor
    policy: TabularPolicy
    history: Optional[torch.Tensor] = None
    trace: Optional[Dict[str, torch.Tensor]] = None

    def start_coop(self, theta: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``(A, R0, N)`` probability of action 0 in the start state per player."""
        th = self.theta if theta is None else theta
        return torch.stack([self.policy.probs(th, i)[..., 0, 0]
                            for i in range(self.policy.num_players)], -1)

    def success(self, threshold: float, theta: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``(A, R0)`` bool: every player cooperates with probability >= threshold (at
        the final parameters, or at ``theta``, e.g. one step of the history)."""
        return self.start_coop(theta).min(-1).values >= threshold


def simulate(game, arms: Sequence[ArmSpec], theta0: torch.Tensor, settings: LearningSettings,
             seed: int = 0, record: bool = False,
             progress: Optional[Callable[[int, int], None]] = None,
             start_step: int = 0, stacked: bool = False, behaviour=None,
             trace: bool = False) -> SimulationResult:
    """Runs every arm from every row of ``theta0`` ``(R0, D)`` for ``settings.steps``.

    With ``stacked=True``, ``theta0`` is ``(A, R0, D)``: one start per arm (to
    continue earlier runs).  ``start_step`` offsets the step counter n, so step
    sizes and lambda schedules continue where an earlier run stopped.

    ``arms`` may come from several registered methods (names or specs).  The
    update of a learner at step ``n`` is ``theta += alpha_n * d_n`` followed by
    clipping to ``[-logit_bound, logit_bound]``, where ``d_n`` is its method's
    :meth:`~.updates.TabularUpdate.direction` (Meta-MAPG: ``v + w_n * (own_coef
    * own + peer_coef * peer)`` with the terms its arm switches on).

    A composition ``<arm>+<sampler>`` (sampled mode, normal-form games) takes its
    batches from that sampler's behaviour policy (``behaviour``: its
    :class:`~rllib_metamapg.samplers.behaviour.BehaviourSettings`, default the tuned
    ones); each sampler draws from its own stream, so on-policy arms draw exactly
    what they draw without compositions in the run.
    """
    settings.validate()
    arms = [arm_for_engine(a, "tabular") for a in arms]
    dtype = settings.torch_dtype
    gen = torch.Generator().manual_seed(int(seed))
    providers = {"on_policy": FieldProvider(game, settings, gen)}
    for k, name in enumerate(dict.fromkeys(a.sampler for a in arms if a.sampler
                                           not in providers), start=1):
        own = torch.Generator().manual_seed(int(seed) + 7919 * k)
        providers[name] = FieldProvider(game, settings, own, name, behaviour)
    provider = providers["on_policy"]
    lam = settings.player_lambda
    if lam is not None and len(lam) != provider.policy.num_players:
        raise SettingsError(f"player_lambda has {len(lam)} entries; this game has "
                            f"{provider.policy.num_players} players (one entry each).")
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
    groups = _method_groups(arms, r0, settings)
    for _, method, _ in groups:
        method.tracing = trace
    history = [theta.clone()] if record else None
    traces: List[Dict[str, torch.Tensor]] = []
    for n in range(start_step, start_step + settings.steps):
        if len(groups) == 1:  # one method: no gather/scatter (and the same draws as before)
            update = groups[0][1].direction(providers[groups[0][2]], theta, n)
        else:
            update = torch.empty_like(theta)
            for rows, method, sampler in groups:
                update[rows] = method.direction(providers[sampler], theta[rows], n)
        if trace:
            traces.append(_step_trace(groups, update, settings.step_size(n)))
        theta = theta + settings.step_size(n) * update
        if settings.logit_bound is not None:
            theta = theta.clamp(-settings.logit_bound, settings.logit_bound)
        if record:
            history.append(theta.clone())
        if progress is not None:
            progress(n + 1 - start_step, settings.steps)
    d = theta.shape[-1]
    hist = torch.stack(history).view(-1, a, r0, d) if record else None
    tr = ({k: torch.stack([t[k] for t in traces]).view(-1, a, r0) for k in traces[0]}
          if trace and traces else None)
    return SimulationResult([arm.name for arm in arms], theta.view(a, r0, d),
                            provider.policy, hist, tr)


def _step_trace(groups, update: torch.Tensor, alpha: float) -> Dict[str, torch.Tensor]:
    """One step's per-row trace: alpha_n, |d_n|, and each method's own quantities."""
    rows_n = update.shape[0]
    out = {"step_size": torch.full((rows_n,), float(alpha), dtype=torch.float64),
           "norm_update": update.norm(dim=-1).to(torch.float64)}
    keys = sorted({k for _, m, _ in groups for k in m.last_trace})
    for k in keys:
        col = torch.full((rows_n,), float("nan"), dtype=torch.float64)
        for rows, method, _ in groups:
            if k in method.last_trace:
                col[rows] = method.last_trace[k].to(torch.float64)
        out[k] = col
    return out


def _method_groups(arms: Sequence[ArmSpec], runs: int, settings: LearningSettings):
    """``[(row index, TabularUpdate, sampler)]``: one update object per method and
    sampler in the run."""
    by_method = {}
    for k, arm in enumerate(arms):
        by_method.setdefault((arm.method, arm.sampler), []).append(k)
    groups = []
    for (_, sampler), ks in by_method.items():
        update = method_of(arms[ks[0]]).tabular_class()([arms[k] for k in ks], runs, settings)
        rows = torch.cat([torch.arange(k * runs, (k + 1) * runs) for k in ks])
        groups.append((rows, update, sampler))
    return groups


__all__ = ["FORMS", "MODES", "FieldProvider", "LearningSettings", "SettingsError",
           "SimulationResult", "simulate"]
