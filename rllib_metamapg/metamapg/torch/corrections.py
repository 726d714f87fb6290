"""Own- and peer-learning corrections for torch RLModules, estimated with DiCE.

For agent ``i`` (slot 0 of ``agents``) and every agent ``k`` (slot 0 and its
peers) on the same joint timesteps:

* the inner policy gradient of agent k is the gradient of the importance-
  weighted DiCE objective ``mean(w * A_k)`` with ``w = exp(sum_m logp_m -
  sum_m logp_old_m)``.  ``w`` carries every agent's log-probability, so its
  derivative with respect to ``theta_i`` carries the cross terms
  ``d/dtheta_i grad_k V_k`` the peer correction needs; at ``theta = theta_old``
  ``w`` is DiCE's "magic box";
* ``unroll_length`` functional inner steps ``theta^{l+1} = theta^l + eta * g(theta^l)``
  are taken for every agent at once (``torch.func.functional_call``);
* ``form="dice"`` evaluates agent i's objective at ``theta^L`` (importance
  weights from the behaviour policy), ``form="taylor"`` at ``theta`` (the first-
  order, LOLA-style form; ``unroll_length`` must then be 1);
* with ``G_k = d J_i / d theta^L_k``, the own term is
  ``(d theta^L_i / d theta_i - I)^T G_i`` and the peer term is
  ``sum_{k != i} (d theta^L_k / d theta_i)^T G_k`` -- the split of the exact
  engine's ``unroll`` form, which is the oracle these estimates are tested
  against.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Sequence

import torch
from torch.func import functional_call

from ray.rllib.core.columns import Columns

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
    """Per-parameter correction vectors for agent i (ascent directions)."""

    pg: List[torch.Tensor]
    own: Optional[List[torch.Tensor]]
    peer: Optional[List[torch.Tensor]]


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
                        inner_lr: float, unroll_length: int = 1, form: str = "dice",
                        own: bool = True, peer: bool = True) -> Corrections:
    """Agent 0's policy gradient and own/peer corrections on shared timesteps.

    Args:
        agents: Agent i first, then its peers, all on the same joint timesteps.
        mask: Boolean/float loss mask over the timesteps (``None``: all valid).
        inner_lr: Inner step size eta.
        unroll_length: Number of inner steps L >= 1.
        form: ``"dice"`` (through the inner steps) or ``"taylor"`` (first order).
        own: Compute the own term.
        peer: Compute the peer term.

    Returns:
        ``Corrections`` with lists aligned to ``agents[0].params``; the terms
        not requested are ``None``.
    """
    if form not in ("dice", "taylor"):
        raise ValueError(f"correction_form={form!r}: choose 'dice' or 'taylor'.")
    if form == "taylor" and unroll_length != 1:
        raise ValueError("correction_form='taylor' is first order: unroll_length must be 1.")
    weights = (torch.ones_like(agents[0].advantages) if mask is None
               else mask.to(agents[0].advantages.dtype))
    denom = weights.sum().clamp_min(1.0)

    def mean(x):
        return (x * weights).sum() / denom

    theta = [a.params for a in agents]
    logp_old = sum(a.logp_old for a in agents)

    def importance(params_list):
        return torch.exp(sum(action_logp(a, p) for a, p in zip(agents, params_list))
                         - logp_old)

    w0 = importance(theta)
    if not (own or peer):  # only the policy gradient: no inner steps needed
        pg = _grad(mean(w0 * agents[0].advantages), theta[0])
        return Corrections([x.detach() for x in pg.values()], None, None)
    # Every agent steps, even for one term alone: J_i is evaluated at everyone's
    # updated parameters in the exact ``unroll`` form too.
    cur, pg = theta, None
    for step in range(unroll_length):
        w = w0 if step == 0 else importance(cur)
        nxt = []
        for k, agent in enumerate(agents):
            g = _grad(mean(w * agent.advantages), cur[k], create_graph=True)
            if step == 0 and k == 0:
                pg = [x.detach() for x in g.values()]
            nxt.append({n: cur[k][n] + inner_lr * g[n] for n in cur[k]})
        cur = nxt

    targets = ([0] if own else []) + (list(range(1, len(agents))) if peer else [])
    if form == "dice":
        objective = mean(importance(cur) * agents[0].advantages)
        at = cur
    else:
        objective = mean(w0 * agents[0].advantages)
        at = theta
    flat = [(k, n) for k in targets for n in at[k]]
    outer = torch.autograd.grad(objective, [at[k][n] for k, n in flat],
                                allow_unused=True, retain_graph=True)
    G = {key: (torch.zeros_like(at[key[0]][key[1]]) if g is None else g.detach())
         for key, g in zip(flat, outer)}

    def through(ks, retain):
        s = sum(((cur[k][n] - theta[k][n]) * G[(k, n)]).sum() for k in ks for n in cur[k])
        return [g.detach() for g in _grad(s, theta[0], retain_graph=retain).values()]

    own_vec = through([0], retain=peer) if own else None
    peer_vec = None
    if peer:
        peer_vec = (through(range(1, len(agents)), retain=False) if len(agents) > 1
                    else [torch.zeros_like(x) for x in pg])
    return Corrections(pg, own_vec, peer_vec)


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
        "pg_norm": float(pg_norm),
        "own_norm": float(_norm(c.own)) if c.own is not None else 0.0,
        "peer_norm": float(peer_norm),
        "cos_peer_pg": cos,
        "clipped": float(scale < 1.0),
        "correction_norm": float(corr_norm) * scale * lam,
    }
    return CorrectionStep([lam * scale * x for x in corr], metrics)
