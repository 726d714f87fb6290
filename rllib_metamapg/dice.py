"""DiCE surrogates shared by both engines (the one definition of the estimators).

Both the tabular engine's sampled mode and the RLlib learner estimate values and
their derivatives of any order from sampled episodes through the same surrogate:

* ``trajectory`` (DiCE, Foerster et al. 2018, in its "loaded" form of Farquhar
  et al. 2019): with ``C_t = sum_{t' <= t} sum_m (log pi_m(a^m_t') - log
  beta_m(a^m_t'))`` the cumulative log-ratio of *all* agents within one
  episode and ``W_t = exp(C_t)``, the surrogate is
  ``sum_t (W_t - W_{t-1}) R_t`` with ``W_{-1} = 1``.  With ``R_t`` the
  discounted reward-to-go ``sum_{t' >= t} gamma^t' r_t'`` it has exactly the
  derivatives of ``sum_t W_t gamma^t r_t`` (summation by parts; the remainder
  ``W_{-1} R_0`` does not depend on the parameters), so every derivative is an
  unbiased estimate of the value's derivative, cross-agent terms included: a
  reward at t depends on every action of every agent up to t.  A baseline
  ``b(s_t)`` that does not depend on the actions at or after t may be
  subtracted from ``R_t`` without bias (``E[W_t - W_{t-1} | s_t] = 0`` in all
  derivatives), which is what lets GAE advantages stand in for ``R_t`` (exactly
  only with lambda = 1 or an exact critic; a learned critic with lambda < 1
  biases them, and an episode cut into chunks loses the terms across the cut).
  At the
  behaviour parameters ``W`` is DiCE's magic box (value 1); elsewhere it is the
  trajectory importance weight.
* ``per_step`` (the paper's App. E.2 proxy): ``exp(sum_m log-ratio at t) * R_t``.
  Its first derivative is the ordinary policy gradient, but its second
  derivatives keep only the same-step dependence between agents, so in multi-step
  games the own and peer corrections it yields are not Meta-MAPG's.  In one-shot
  games (T = 1) the two coincide up to a constant.
"""

from __future__ import annotations

import torch

from rllib_metamapg.forms import (CORRECTION_FORMS, ESTIMATORS, FORM_ALIASES,  # noqa: F401
                                  canonical_form)


def magic_box(x: torch.Tensor) -> torch.Tensor:
    """DiCE's magic box: value 1, derivative ``x'`` (and so on for every order)."""
    return torch.exp(x - x.detach())


def surrogate_weights(step_logratio: torch.Tensor, estimator: str = "trajectory",
                      dim: int = -1) -> torch.Tensor:
    """Per-step weights that multiply ``R_t`` in the surrogate.

    Args:
        step_logratio: Joint log-ratio of every agent at each step, time along
            ``dim``; steps that are not part of the episode must hold 0.
        estimator: ``"trajectory"`` (``W_t - W_{t-1}``) or ``"per_step"``
            (``exp`` of the step's own log-ratio).
        dim: The time dimension.
    """
    if estimator == "per_step":
        return torch.exp(step_logratio)
    if estimator != "trajectory":
        raise ValueError(f"correction_estimator={estimator!r}: choose one of {ESTIMATORS}.")
    cum = step_logratio.cumsum(dim)
    # W_{t-1} as exp(C_t - l_t): no shifted copy, and exact 1 at each episode start.
    return torch.exp(cum) - torch.exp(cum - step_logratio)


def reward_to_go(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``sum_{t' >= t} x_t'`` along ``dim``."""
    return x.flip(dim).cumsum(dim).flip(dim)
