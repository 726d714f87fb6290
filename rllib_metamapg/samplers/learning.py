"""Independent PPO on a normal-form game with a sampler, batched over runs (MA-PROPS's setting).

Each agent has a tabular policy (one logit per action) and a scalar value, both
trained by PPO as in the MA-PROPS paper's matrix-game runs (CleanRL's PPO:
``epochs`` x ``minibatches``, clip 0.2, entropy 0.01, value coefficient 0.5 with
value clipping, gradient-norm clip 0.5, advantages normalised per minibatch,
Adam with eps 1e-5).  Every ``batch`` env steps the target policies are updated
on the buffer as if it were on-policy (the log-probabilities PPO uses are the
target's), and the buffer starts again.  A game is one-shot, so the advantage
of a sample is its reward minus the agent's value.  Initial policies are uniform
(zero logits) in every run: runs differ only in their draws, so one seed gives
every sampler the same start.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Optional

import numpy as np
import torch

from rllib_metamapg.samplers.behaviour import (BehaviourSettings, TabularSampler, _Adam,
                                               tv_joint, tv_marginal)


@dataclasses.dataclass(frozen=True)
class PPOSettings:
    """The target learner's settings (MA-PROPS App. G, Tables 2 and 3)."""

    batch: int = 20
    lr: float = 0.1
    epochs: int = 4
    minibatches: int = 4
    clip: float = 0.2
    entropy_coeff: float = 0.01
    vf_coeff: float = 0.5
    grad_clip: float = 0.5


def _ppo_update(params, opt, logp_old, acts, rewards, cfg: PPOSettings, gen):
    """One PPO update of one agent: ``params`` ``(R, A + 1)`` (logits, value)."""
    runs, length = acts.shape
    width = params.shape[1] - 1
    value_old = params[:, width].detach().clone()
    adv_all = rewards - value_old[:, None]
    for _ in range(cfg.epochs):
        order = torch.rand(runs, length, generator=gen).argsort(-1)
        for idx in torch.tensor_split(order, min(cfg.minibatches, length), dim=1):
            p = params.detach().requires_grad_(True)
            logits, value = p[:, :width], p[:, width]
            logp = torch.log_softmax(logits, -1)
            a = torch.gather(acts, 1, idx)
            adv = torch.gather(adv_all, 1, idx)
            if adv.shape[1] > 1:
                adv = (adv - adv.mean(1, keepdim=True)) / (adv.std(1, keepdim=True) + 1e-8)
            ratio = torch.exp(torch.gather(logp, 1, a) - torch.gather(logp_old, 1, a))
            pg = torch.maximum(-adv * ratio, -adv * ratio.clamp(1 - cfg.clip, 1 + cfg.clip))
            ret = torch.gather(rewards, 1, idx)
            v = value[:, None].expand_as(ret)
            v_clip = value_old[:, None] + (v - value_old[:, None]).clamp(-cfg.clip, cfg.clip)
            v_loss = 0.5 * torch.maximum((v - ret) ** 2, (v_clip - ret) ** 2).mean(1)
            entropy = -(logp.exp() * logp).sum(-1)
            loss = pg.mean(1) - cfg.entropy_coeff * entropy + cfg.vf_coeff * v_loss
            grad, = torch.autograd.grad(loss.sum(), p)
            params = opt.ascend(params, -grad, torch.ones(runs, dtype=torch.bool))
    return params


def train(games, sampler: str, runs: int, steps: int, seed: int = 0,
          ppo: PPOSettings = PPOSettings(), behaviour: BehaviourSettings = BehaviourSettings(),
          progress: Optional[Callable[[int, int], None]] = None) -> Dict[str, np.ndarray]:
    """Trains ``runs`` independent runs on each game for ``steps`` env steps.

    ``games`` (one game or several with the same action counts) run as one batch of
    ``len(games) * runs`` rows, so a table of games costs about what one game does.
    Run ``k`` of every game draws from the same stream position whatever the sampler.

    Returns:
        ``success`` ``(games, runs)``: the greedy joint action is one of the game's
        targets; ``greedy`` ``(games, runs, N)``; ``joint_tv`` ``(games, updates)``: the
        mean joint TV of each target update's batch; ``agent_tv`` likewise for agent 0.
    """
    games = list(games) if isinstance(games, (list, tuple)) else [games]
    shapes = {tuple(g.num_actions) for g in games}
    if len(shapes) != 1 or any(g.num_states != 1 for g in games):
        raise ValueError("train: give normal-form games with the same action counts "
                         f"(got {[(g.name, g.num_actions, g.num_states) for g in games]}).")
    gen = torch.Generator().manual_seed(int(seed))
    acts_n = games[0].num_actions
    dtype = torch.float64
    rows = len(games) * runs
    params = [torch.zeros(rows, a + 1, dtype=dtype) for a in acts_n]
    opts = [_Adam(p.shape, ppo.lr, ppo.grad_clip, dtype, eps=1e-5) for p in params]
    smp = TabularSampler(sampler, acts_n, rows, behaviour, gen, dtype)
    n = games[0].num_players
    # (N, rows, K): every row's payoffs.
    pay = torch.stack([torch.as_tensor(g.payoffs, dtype=dtype).reshape(n, -1)
                       for g in games], 1).repeat_interleave(runs, 1)
    joint_tv, agent_tv = [], []
    for step in range(steps):
        logp = [torch.log_softmax(p[:, :-1], -1) for p in params]
        smp.draw(logp)
        if (step + 1) % ppo.batch == 0:
            counts = smp.joint_counts()
            target = smp.joint_logp(logp).exp()
            joint_tv.append(tv_joint(counts, target).view(len(games), runs).mean(1))
            agent_tv.append(tv_marginal(counts, target, smp.agent_action[0],
                                        acts_n[0]).view(len(games), runs).mean(1))
            joint = torch.stack(smp.buffer, -1)  # (rows, n)
            for i, idx in enumerate(smp.agent_action):
                params[i] = _ppo_update(params[i], opts[i], logp[i], idx[joint],
                                        torch.gather(pay[i], 1, joint), ppo, gen)
            smp.clear()
        if progress is not None:
            progress(step + 1, steps)
    greedy = torch.stack([p[:, :-1].argmax(-1) for p in params], -1).view(
        len(games), runs, n).numpy()
    success = np.stack([(greedy[k][:, None, :] == np.asarray(g.targets)[None]).all(-1).any(-1)
                        for k, g in enumerate(games)])

    def stack(xs):  # (games, updates)
        return torch.stack(xs, 1).numpy() if xs else np.zeros((len(games), 0))

    return {"success": success, "greedy": greedy, "joint_tv": stack(joint_tv),
            "agent_tv": stack(agent_tv)}
