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
import tree
from torch.func import functional_call

from ray.rllib.core.columns import Columns

from rllib_metamapg.metamapg import metrics as M
from rllib_metamapg.dice import (CORRECTION_FORMS, ESTIMATORS, canonical_form,
                                 surrogate_weights)
from rllib_metamapg.rllib_base.torch.module_params import (
    Params, actor_forward, actor_path, policy_param_names)


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
        present: ``(rows,)`` bool, the rows at which this agent acted (``None``:
            all).  Where it did not (it had ended, or not yet started), its other
            fields are placeholders: its log-probability enters no weight and its
            advantage counts as 0.
    """

    module: Any
    params: Params
    batch: Dict[str, Any]
    actions: torch.Tensor
    logp_old: torch.Tensor
    advantages: torch.Tensor
    present: Optional[torch.Tensor] = None


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

    def select(self, rows: torch.Tensor) -> "EpisodeLayout":
        """The layout of the rows at indices ``rows`` (all of them valid)."""
        step = self.index - self.episode * self.shape[1]
        return EpisodeLayout(self.episode[rows], step[rows],
                             torch.ones_like(rows, dtype=torch.bool))

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


def action_logp(agent: AgentSlice, params: Params) -> torch.Tensor:
    """Log-probability of the agent's actions under ``params`` (functional)."""
    path = actor_path(agent.module)
    if path is None:
        logits = functional_call(agent.module, params, (agent.batch,))[
            Columns.ACTION_DIST_INPUTS]
    else:  # the actor's layers only, as RLlib's own forward computes the logits
        actor, rename = actor_forward(agent.module)
        logits = functional_call(actor, {rename[n]: p for n, p in params.items()
                                         if n in rename}, (agent.batch,))
    dist = agent.module.get_train_action_dist_cls().from_logits(logits)
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
            that product carries an O(1/episodes) bias (their covariance),
            which disjoint sets remove.  Unbiased overall only when the rows
            are whole episodes and the advantages are unbiased for the
            episode's value (reward-to-go less a baseline of state and time):
            chunks of cut episodes lose the dependence across each cut, and a
            learned critic or GAE bias the advantages themselves.  ``False``:
            every stage uses the whole batch (less variance, that bias).  A batch
            with fewer episodes than stages cannot be split and uses the whole
            batch (``Corrections.split`` says which happened).  The policy
            gradient always uses the whole batch.

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
    agents = [_zero_where_absent(a) for a in agents]
    adv = agents[0].advantages
    valid = (torch.ones_like(adv, dtype=torch.bool) if mask is None else mask.bool())
    if layout is None:
        layout = EpisodeLayout.one_step(adv.shape[0], valid, adv.device)
    trajectory = estimator == "trajectory"
    episodes = max(layout.count_episodes(valid), 1)

    def per_episode(i: int) -> float:
        # Agent i's own rows per unit of the objective (per episode, or per row of
        # ``rows``): its PPO loss averages over its own rows.
        here = agents[i].present
        if not trajectory and here is None:
            return 1.0
        own_rows = int((valid if here is None else valid & here).sum())
        return own_rows / (episodes if trajectory else max(int(valid.sum()), 1))
    # Only the parameters the action distribution depends on are differentiated
    # (RLlib's default PPO module also holds the critic's); the rest get zeros.
    theta = [{n: a.params[n] for n in _policy_param_names(a)} for a in agents]
    whole = _Rows(agents, layout, valid, trajectory)

    def policy_gradients(rows: "_Rows", w: torch.Tensor) -> Dict[int, Params]:
        # retain_graph: ``w``'s graph serves every agent (and the stages below).
        return {i: _grad(rows.mean(w * rows.agents[i].advantages), theta[i],
                         retain_graph=True) for i in chosen}

    stages = unroll_length + 1
    if not (own or peer):  # only the policy gradient: no inner steps needed
        pgs = policy_gradients(whole, whole.importance(theta))
        return [Corrections(_full(agents[i], pgs[i]), None, None, per_episode(i))
                for i in chosen]
    split = split and layout.count_episodes(valid) >= stages
    # Split: each stage on its own episodes' rows only.  The inner steps' graphs --
    # which the corrections differentiate again -- and the outer objective then cost
    # their share of the batch, not all of it (the other rows' weights would be 0).
    if split:
        masks = layout.split(stages)
        parts = [whole.select(m) for m in masks]
        # The policy gradient on the whole batch is the episode-weighted mean of the
        # first stage's inner gradient (below) and that of the remaining rows.
        rest = parts[1] if stages == 2 else whole.select(valid & ~masks[0])
        w_rest = rest.importance(theta)
        pg_rest = policy_gradients(rest, w_rest)
        w_first = parts[0].importance(theta)
    else:
        parts = [whole] * stages
        w_first = whole.importance(theta)
        pgs = policy_gradients(whole, w_first)
    # Every agent steps, even for one term alone: J_i is evaluated at everyone's
    # updated parameters in the exact ``unroll`` form too.
    cur = theta
    for step in range(unroll_length):
        rows = parts[step]
        w = w_first if step == 0 else rows.importance(cur)
        grads = [_grad(rows.mean(w * agent.advantages), cur[k], create_graph=True)
                 for k, agent in enumerate(rows.agents)]
        if step == 0:
            first_step = grads
        cur = [{n: cur[k][n] + inner_lr * g[n] for n in cur[k]} for k, g in enumerate(grads)]
    if split:
        # Sums over each part's rows, over the whole batch's count (a part with no
        # rows has a zero mean whatever its count).
        n_first, n_rest = parts[0].count, rest.count
        pgs = {i: {n: (n_first * first_step[i][n].detach() + n_rest * pg_rest[i][n])
                   / whole.count for n in theta[i]} for i in chosen}
    last = parts[-1]
    if form == "taylor":  # L = 1: J_i at theta, on the rows of the last stage
        at, w_at = theta, (w_rest if split else w_first)
    else:
        at, w_at = cur, last.importance(cur)

    def corrections_of(i: int) -> Corrections:
        others = [k for k in range(len(agents)) if k != i]
        targets = ([i] if own else []) + (others if peer else [])
        objective = last.mean(w_at * last.agents[i].advantages)
        flat = [(k, n) for k in targets for n in at[k]]
        outer = torch.autograd.grad(objective, [at[k][n] for k, n in flat],
                                    allow_unused=True, retain_graph=True)
        G = {key: (torch.zeros_like(at[key[0]][key[1]]) if g is None else g.detach())
             for key, g in zip(flat, outer)}

        def through(ks):
            """(d theta^L_k / d theta_i - [k == i] I)^T G_k summed over ``ks``: one VJP."""
            keys = [(k, n) for k in ks for n in cur[k]]
            vjp = torch.autograd.grad([cur[k][n] for k, n in keys], list(theta[i].values()),
                                      grad_outputs=[G[key] for key in keys],
                                      allow_unused=True, retain_graph=True)
            out = {n: (torch.zeros_like(p) if v is None else v)
                   for (n, p), v in zip(theta[i].items(), vjp)}
            if i in ks:  # theta^L_i carries theta_i itself: its identity part is G_i
                out = {n: v - G[(i, n)] for n, v in out.items()}
            return _full(agents[i], out)

        own_vec = through([i]) if own else None
        peer_vec = None
        if peer:
            peer_vec = (through(others) if others
                        else [torch.zeros_like(x) for x in agents[i].params.values()])
        return Corrections(_full(agents[i], pgs[i]), own_vec, peer_vec, per_episode(i),
                           split)

    return [corrections_of(i) for i in chosen]


class _Rows:
    """Every agent's slice of one set of rows, with the estimator's weights and mean.

    ``part`` selects the rows that count; the mean is over its episodes
    (trajectory) or rows (per_step), as the objective's units require.
    """

    def __init__(self, agents: Sequence[AgentSlice], layout: EpisodeLayout,
                 part: torch.Tensor, trajectory: bool):
        self.agents, self.layout, self.trajectory = agents, layout, trajectory
        # Episodes (trajectory) or rows (per_step): what ``mean`` divides by.
        self.count = max(layout.count_episodes(part) if trajectory else int(part.sum()), 1)
        self._weights = part.to(agents[0].advantages.dtype) / self.count

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self._weights).sum()

    def importance(self, params_list: Sequence[Params]) -> torch.Tensor:
        """Surrogate weights of every row at the agents' ``params_list``."""
        logratio = sum(_logratio(a, p) for a, p in zip(self.agents, params_list))
        return self.layout.weights(logratio) if self.trajectory else torch.exp(logratio)

    def select(self, part: torch.Tensor) -> "_Rows":
        """The rows of ``part`` (whole episodes) as a batch of their own."""
        idx = part.nonzero().squeeze(1)
        agents = [dataclasses.replace(
            a, batch=tree.map_structure(lambda v: v[idx], a.batch), actions=a.actions[idx],
            logp_old=a.logp_old[idx], advantages=a.advantages[idx],
            present=None if a.present is None else a.present[idx]) for a in self.agents]
        return _Rows(agents, self.layout.select(idx), torch.ones_like(idx, dtype=torch.bool),
                     self.trajectory)


def _logratio(agent: AgentSlice, params: Params) -> torch.Tensor:
    """``log pi(a) - log pi_old(a)`` per row; 0 where the agent did not act."""
    lr = action_logp(agent, params) - agent.logp_old
    if agent.present is None:
        return lr
    return torch.where(agent.present, lr, torch.zeros_like(lr))


def _zero_where_absent(agent: AgentSlice) -> AgentSlice:
    """``agent`` with its advantage 0 at the rows where it did not act."""
    if agent.present is None:
        return agent
    present = agent.present.bool()
    return dataclasses.replace(agent, present=present, advantages=torch.where(
        present, agent.advantages, torch.zeros_like(agent.advantages)))


def _policy_param_names(agent: AgentSlice) -> List[str]:
    """The names in ``agent.params`` that :func:`action_logp` reads."""
    return policy_param_names(agent.module, agent.params)


def _full(agent: AgentSlice, vecs: Params) -> List[torch.Tensor]:
    """``vecs`` (detached) aligned to all of ``agent.params``, zeros where absent."""
    return [vecs[n].detach() if n in vecs else torch.zeros_like(p)
            for n, p in agent.params.items()]


def _flat(vecs: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([v.reshape(-1) for v in vecs])


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
    # On flat vectors: a handful of ops instead of a few per parameter tensor.
    pg = _flat(c.pg)
    own = _flat(c.own) if c.own is not None else None
    peer = _flat(c.peer) if c.peer is not None else None
    corr = torch.zeros_like(pg)
    if own is not None:
        corr.add_(own, alpha=own_coef)
    if peer is not None:
        corr.add_(peer, alpha=peer_coef)
    pg_norm, corr_norm = pg.norm().double(), corr.norm().double()
    scale = 1.0
    if clip is not None and float(corr_norm) > clip * float(pg_norm):
        scale = clip * float(pg_norm) / float(corr_norm)
    peer_norm = peer.norm().double() if peer is not None else torch.zeros((), dtype=torch.float64)
    cos = 0.0
    if peer is not None and float(peer_norm) > 0 and float(pg_norm) > 0:
        cos = float(torch.dot(peer, pg).double() / (peer_norm * pg_norm))
    metrics = {
        M.PG_NORM: float(pg_norm),
        M.OWN_NORM: float(own.norm()) if own is not None else 0.0,
        M.PEER_NORM: float(peer_norm),
        M.COS_PEER_PG: cos,
        M.CLIPPED: float(scale < 1.0),
        M.CORRECTION_NORM: float(corr_norm) * scale * lam,
    }
    step = (lam * scale) * corr
    pieces = torch.split(step, [x.numel() for x in c.pg])
    return CorrectionStep([v.view_as(x) for v, x in zip(pieces, c.pg)], metrics)

