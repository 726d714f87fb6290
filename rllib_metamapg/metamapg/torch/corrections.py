"""Own- and peer-learning corrections for torch RLModules, estimated with DiCE.

For agent ``i`` (slot 0 of ``agents``) and every agent ``k`` (slot 0 and its
peers) on the same joint timesteps:

* the inner policy gradient of agent k is the gradient of the DiCE surrogate
  ``sum_rows w * A_k`` (normalised per episode or per row, see below).  ``w``
  carries every agent's log-probability, so its derivative with respect to
  ``theta_i`` carries the cross terms ``d/dtheta_i grad_k V_k`` the peer
  correction needs.  The surrogate is the one of :mod:`rllib_metamapg.dice`:
  ``estimator="trajectory"`` weighs step t by ``W_t - W_{t-1}``, ``W_t`` the
  exponentiated log-ratio of *every agent's actions up to t in the episode*
  (unbiased in every derivative; the episode structure comes from
  :class:`EpisodeLayout`), ``estimator="per_step"`` by the ratio of step t alone
  (the paper's App. E.2 proxy: right for the policy gradient, not for the
  corrections in multi-step games);
* ``unroll_length`` functional inner steps ``theta^{l+1} = theta^l + eta * g(theta^l)``
  are taken for every agent at once (``torch.func.functional_call``);
* ``form="unroll"`` evaluates agent i's objective at ``theta^L`` (importance
  weights from the behaviour policy), ``form="taylor"`` at ``theta`` (the first-
  order, LOLA-style form; ``unroll_length`` must then be 1);
* with ``G_k = d J_i / d theta^L_k``, the own term is
  ``(d theta^L_i / d theta_i - I)^T G_i`` and the peer term is
  ``sum_{k != i} (d theta^L_k / d theta_i)^T G_k`` -- the split of the exact
  engine's ``unroll`` form, which is the oracle these estimates are tested
  against.

Normalisation: the trajectory surrogate is a per-episode sum averaged over
episodes, so ``J`` estimates the episode's value and ``inner_lr`` is the step on
that value -- the same quantity as the tabular engine's ``inner_lr``.  The
per-step proxy averages over rows, as PPO's loss does.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Sequence

import torch
from torch.func import functional_call

from ray.rllib.core.columns import Columns

from rllib_metamapg.metamapg import metrics as M
from rllib_metamapg.dice import (CORRECTION_FORMS, ESTIMATORS, canonical_form,
                                 surrogate_weights)

Params = Dict[str, torch.Tensor]


@dataclasses.dataclass
class AgentSlice:
    """One agent's view of a set of joint timesteps.

    Attributes:
        module: The agent's (unwrapped) torch RLModule.
        params: The trainable parameters to differentiate, by name.
        batch: Forward-pass inputs for ``module`` (at least ``Columns.OBS``).
        actions: Actions taken.
        logp_old: Behaviour-policy log-probabilities of ``actions``.
        advantages: The agent's advantage estimates.
    """

    module: Any
    params: Params
    batch: Dict[str, Any]
    actions: torch.Tensor
    logp_old: torch.Tensor
    advantages: torch.Tensor


@dataclasses.dataclass
class Corrections:
    """Per-parameter correction vectors for agent i (ascent directions).

    Attributes:
        pg, own, peer: In the units of the estimator's objective (per episode for
            ``trajectory``, per row for ``per_step``); ``None`` when not computed.
        steps_per_episode: Valid rows per unit of the objective (mean episode
            length for ``trajectory``, 1 for ``per_step``); :meth:`per_step`
            divides by it.
        split: Whether the stages used disjoint episodes (see ``compute_corrections``).
    """

    pg: List[torch.Tensor]
    own: Optional[List[torch.Tensor]]
    peer: Optional[List[torch.Tensor]]
    steps_per_episode: float = 1.0
    split: bool = False

    def per_step(self) -> "Corrections":
        """The same terms per timestep: the scale of PPO's (row-averaged) loss."""
        if self.steps_per_episode == 1.0:
            return self
        f = 1.0 / self.steps_per_episode

        def scale(v):
            return None if v is None else [f * x for x in v]

        return Corrections(scale(self.pg), scale(self.own), scale(self.peer), 1.0,
                           self.split)


class EpisodeLayout:
    """Where each row sits in its episode, for the trajectory estimator.

    Rows are scattered into a dense ``(episodes, steps)`` grid by their episode
    number and step index (never by row order), the surrogate weights are taken
    along the step axis, and gathered back.

    Args:
        episode: ``(rows,)`` integer episode (chunk) number of each row.
        step: ``(rows,)`` step index of each row within its episode.
        valid: ``(rows,)`` bool, rows that count (loss mask).
    """

    def __init__(self, episode: torch.Tensor, step: torch.Tensor, valid: torch.Tensor):
        episode, step = episode.long(), step.long()
        if step.numel() and int(step.min()) < 0:
            raise ValueError("EpisodeLayout: step indices must be >= 0.")
        _, dense_ep = torch.unique(episode, return_inverse=True)
        width = int(step.max()) + 1 if step.numel() else 1
        flat = dense_ep * width + step
        if torch.unique(flat).numel() != flat.numel():
            raise ValueError("EpisodeLayout: two rows share an (episode, step) pair; "
                             "each row must be one agent's step of one episode.")
        self.index = flat
        self.episode = dense_ep
        self.shape = (int(dense_ep.max()) + 1 if dense_ep.numel() else 0, width)
        self.valid = valid

    def count_episodes(self, rows: torch.Tensor) -> int:
        """Number of episodes with at least one of the selected rows."""
        return int(torch.unique(self.episode[rows]).numel())

    def split(self, parts: int) -> List[torch.Tensor]:
        """``parts`` disjoint row masks of valid rows, whole episodes each
        (episode ``e`` goes to part ``e mod parts``)."""
        group = self.episode % parts
        return [self.valid & (group == p) for p in range(parts)]

    @classmethod
    def one_step(cls, rows: int, valid: torch.Tensor, device=None) -> "EpisodeLayout":
        """Every row its own one-step episode (one-shot games)."""
        return cls(torch.arange(rows, device=device), torch.zeros(rows, dtype=torch.long,
                                                                   device=device), valid)

    def weights(self, step_logratio: torch.Tensor) -> torch.Tensor:
        """Trajectory surrogate weights ``W_t - W_{t-1}`` per row."""
        lr = torch.where(self.valid, step_logratio, torch.zeros_like(step_logratio))
        dense = lr.new_zeros(self.shape[0] * self.shape[1]).index_put((self.index,), lr)
        w = surrogate_weights(dense.view(self.shape), "trajectory")
        return w.reshape(-1)[self.index]


def trainable_params(module: torch.nn.Module) -> Params:
    """The module's parameters that require a gradient, by name."""
    return {n: p for n, p in module.named_parameters() if p.requires_grad}


def action_logp(agent: AgentSlice, params: Params) -> torch.Tensor:
    """Log-probability of the agent's actions under ``params`` (functional)."""
    out = functional_call(agent.module, params, (agent.batch,))
    dist = agent.module.get_train_action_dist_cls().from_logits(
        out[Columns.ACTION_DIST_INPUTS])
    return dist.logp(agent.actions)


def _grad(output: torch.Tensor, params: Params, **kwargs) -> Params:
    names = list(params)
    grads = torch.autograd.grad(output, [params[n] for n in names],
                                allow_unused=True, **kwargs)
    return {n: (torch.zeros_like(params[n]) if g is None else g)
            for n, g in zip(names, grads)}


def compute_corrections(agents: Sequence[AgentSlice], mask: Optional[torch.Tensor], *,
                        inner_lr: float, unroll_length: int = 1, form: str = "unroll",
                        own: bool = True, peer: bool = True,
                        estimator: str = "trajectory",
                        layout: Optional[EpisodeLayout] = None,
                        split: bool = True) -> Corrections:
    """Agent 0's policy gradient and own/peer corrections on shared timesteps.

    Args:
        agents: Agent i first, then its peers, all on the same joint timesteps.
        mask: Boolean/float loss mask over the timesteps (``None``: all valid).
        inner_lr: Inner step size eta.
        unroll_length: Number of inner steps L >= 1.
        form: ``"unroll"`` (through the inner steps; ``"dice"`` accepted) or
            ``"taylor"`` (first order).
        own: Compute the own term.
        peer: Compute the peer term.
        estimator: ``"trajectory"`` or ``"per_step"`` (see the module docstring).
        layout: Episode structure of the rows; ``None`` treats every row as a
            one-step episode (one-shot games).
        split: Estimate each inner step and the outer objective on disjoint sets
            of episodes (every (L+1)-th episode each), as the tabular engine
            draws a fresh batch per step.  The corrections multiply estimates
            of the inner step and of the outer gradient; from one shared batch
            that product carries an O(1/episodes) bias (their covariance), from
            disjoint ones it is unbiased.  ``False``: every stage uses the whole
            batch (less variance, that bias).  A batch with fewer episodes than
            stages cannot be split and uses the whole batch (``Corrections.split``
            says which happened).  The policy gradient always uses the whole batch.

    Returns:
        ``Corrections`` with lists aligned to ``agents[0].params``; the terms
        not requested are ``None``.
    """
    return compute_corrections_for(agents, mask, for_agents=(0,), inner_lr=inner_lr,
                                   unroll_length=unroll_length, form=form, own=own,
                                   peer=peer, estimator=estimator, layout=layout,
                                   split=split)[0]


def compute_corrections_for(agents: Sequence[AgentSlice], mask: Optional[torch.Tensor], *,
                            for_agents: Optional[Sequence[int]] = None, inner_lr: float,
                            unroll_length: int = 1, form: str = "unroll", own: bool = True,
                            peer: bool = True, estimator: str = "trajectory",
                            layout: Optional[EpisodeLayout] = None,
                            split: bool = True) -> List[Corrections]:
    """:func:`compute_corrections` of several agents of one set of joint timesteps.

    Agent ``j``'s result is what :func:`compute_corrections` returns with agent j
    moved first; what every agent shares -- the importance weights at theta, the
    inner steps of every agent and the weights at theta^L -- is built once, so
    the learner pays for them once per update instead of once per module.

    Args:
        for_agents: Indices into ``agents`` (default: every agent).
        Others: as :func:`compute_corrections`.

    Returns:
        One ``Corrections`` per entry of ``for_agents``, aligned to that agent's params.
    """
    if canonical_form(form) not in CORRECTION_FORMS:
        raise ValueError(f"correction_form={form!r}: choose one of {CORRECTION_FORMS}.")
    form = canonical_form(form)
    if form == "taylor" and unroll_length != 1:
        raise ValueError("correction_form='taylor' is first order: unroll_length must be 1.")
    if estimator not in ESTIMATORS:
        raise ValueError(f"correction_estimator={estimator!r}: choose one of {ESTIMATORS}.")
    chosen = list(range(len(agents)) if for_agents is None else for_agents)
    adv = agents[0].advantages
    valid = (torch.ones_like(adv, dtype=torch.bool) if mask is None else mask.bool())
    if layout is None:
        layout = EpisodeLayout.one_step(adv.shape[0], valid, adv.device)
    trajectory = estimator == "trajectory"
    step_weights = layout.weights if trajectory else torch.exp

    def averager(part):
        """Mean over the part's episodes (trajectory) or rows (per_step)."""
        denom = max(layout.count_episodes(part) if trajectory else int(part.sum()), 1)
        weights = part.to(adv.dtype) / denom
        return lambda x: (x * weights).sum()

    rows = int(valid.sum())
    per_episode = rows / max(layout.count_episodes(valid), 1) if trajectory else 1.0
    theta = [a.params for a in agents]
    logp_old = sum(a.logp_old for a in agents)

    def importance(params_list):
        return step_weights(sum(action_logp(a, p) for a, p in zip(agents, params_list))
                            - logp_old)

    w0 = importance(theta)
    whole = averager(valid)
    # retain_graph throughout: the graph of w0 and the inner steps serves every agent.
    pgs = {i: [x.detach() for x in _grad(whole(w0 * agents[i].advantages), theta[i],
                                         retain_graph=True).values()] for i in chosen}
    if not (own or peer):  # only the policy gradient: no inner steps needed
        return [Corrections(pgs[i], None, None, per_episode) for i in chosen]
    stages = unroll_length + 1
    split = split and layout.count_episodes(valid) >= stages
    means = ([averager(p) for p in layout.split(stages)] if split
             else [averager(valid)] * stages)
    # Every agent steps, even for one term alone: J_i is evaluated at everyone's
    # updated parameters in the exact ``unroll`` form too.
    cur = theta
    for step in range(unroll_length):
        w = w0 if step == 0 else importance(cur)
        nxt = []
        for k, agent in enumerate(agents):
            g = _grad(means[step](w * agent.advantages), cur[k], create_graph=True)
            nxt.append({n: cur[k][n] + inner_lr * g[n] for n in cur[k]})
        cur = nxt
    at, w_at = (cur, importance(cur)) if form == "unroll" else (theta, w0)

    def corrections_of(i: int) -> Corrections:
        others = [k for k in range(len(agents)) if k != i]
        targets = ([i] if own else []) + (others if peer else [])
        objective = means[-1](w_at * agents[i].advantages)
        flat = [(k, n) for k in targets for n in at[k]]
        outer = torch.autograd.grad(objective, [at[k][n] for k, n in flat],
                                    allow_unused=True, retain_graph=True)
        G = {key: (torch.zeros_like(at[key[0]][key[1]]) if g is None else g.detach())
             for key, g in zip(flat, outer)}

        def through(ks):
            s = sum(((cur[k][n] - theta[k][n]) * G[(k, n)]).sum() for k in ks
                    for n in cur[k])
            return [g.detach() for g in _grad(s, theta[i], retain_graph=True).values()]

        own_vec = through([i]) if own else None
        peer_vec = None
        if peer:
            peer_vec = (through(others) if others
                        else [torch.zeros_like(x) for x in pgs[i]])
        return Corrections(pgs[i], own_vec, peer_vec, per_episode, split)

    return [corrections_of(i) for i in chosen]


def _norm(vecs: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.sqrt(sum((v.double() ** 2).sum() for v in vecs))


@dataclasses.dataclass
class CorrectionStep:
    """The correction actually applied, and what to log about it."""

    step: List[torch.Tensor]
    metrics: Dict[str, float]


def combine(c: Corrections, *, own_coef: float, peer_coef: float, lam: float,
            clip: Optional[float]) -> CorrectionStep:
    """``lam * clip(own_coef * own + peer_coef * peer)``, norm-clipped to ``clip * |pg|``.

    Args:
        c: Corrections from :func:`compute_corrections`.
        own_coef: Weight of the own term (ignored when it was not computed).
        peer_coef: Weight of the peer term (ignored when it was not computed).
        lam: Current correction strength lambda (cooldown schedule).
        clip: ``c`` of the norm clip ``|corr| <= c * |pg|``; ``None`` disables it.
    """
    corr = [torch.zeros_like(x) for x in c.pg]
    if c.own is not None:
        corr = [a + own_coef * b for a, b in zip(corr, c.own)]
    if c.peer is not None:
        corr = [a + peer_coef * b for a, b in zip(corr, c.peer)]
    pg_norm, corr_norm = _norm(c.pg), _norm(corr)
    scale = 1.0
    if clip is not None and float(corr_norm) > clip * float(pg_norm):
        scale = clip * float(pg_norm) / float(corr_norm)
    peer_norm = _norm(c.peer) if c.peer is not None else torch.zeros((), dtype=torch.float64)
    cos = 0.0
    if c.peer is not None and float(peer_norm) > 0 and float(pg_norm) > 0:
        dot = sum((a.double() * b.double()).sum() for a, b in zip(c.peer, c.pg))
        cos = float(dot / (peer_norm * pg_norm))
    metrics = {
        M.PG_NORM: float(pg_norm),
        M.OWN_NORM: float(_norm(c.own)) if c.own is not None else 0.0,
        M.PEER_NORM: float(peer_norm),
        M.COS_PEER_PG: cos,
        M.CLIPPED: float(scale < 1.0),
        M.CORRECTION_NORM: float(corr_norm) * scale * lam,
    }
    return CorrectionStep([lam * scale * x for x in corr], metrics)
