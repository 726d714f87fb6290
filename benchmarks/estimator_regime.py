"""The trajectory estimator in the regime RLlib runs it: batch size, baseline, cut chunks.

On the 12-round IPD with tabular modules at one fixed theta (the ``mixed`` draw of
the oracle tests), the learner's ``compute_corrections`` (trajectory estimator,
split stages) is compared with ``ExactEngine.corrections(form="unroll")`` for
inner steps L = 1 and 2, as a function of

* **episodes per batch** (16, 64, 256, 2000);
* **baseline** subtracted from the discounted reward-to-go:
  ``none``; ``state`` -- the best critic that sees only the memory-one
  observation, as RLlib's MLP critic does (the exact value-to-go averaged over
  rounds, weighted by how often each round visits the state: what an MSE fit of
  the value targets converges to); ``exact`` -- the exact value-to-go of the state
  *and* round, which no RLlib critic here can represent;
* **episodes**: ``whole`` (the learner sees every 12-round episode whole) or
  ``cut8`` -- what 32 vector envs with an 8-step rollout fragment give: each env's
  episodes are cut wherever its running step count crosses a multiple of 8, every
  chunk is handed to the learner as an episode of its own (steps renumbered from
  0), and the chunk's last reward-to-go is bootstrapped with the baseline's value
  at the cut (nothing for ``none``), as GAE with lambda = 1 does.

Each cell is averaged over batches totalling ~32,000 episodes. Two numbers per
term (own, peer; both players pooled):

* ``bias_cos`` / ``bias_error``: cos and relative error of the *mean* estimate
  against the exact term -- what remains with infinitely many updates;
* ``batch_error``: median relative error of a *single* batch's estimate -- what
  one update sees.

Prints a table and writes JSON (``benchmarks/results/estimator_regime.json``);
``docs/rllib.md`` renders it.

Usage: python benchmarks/estimator_regime.py [--out PATH] [--total-episodes N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from ipd_samples import IPD, POLICY, S, THETAS, exact, modules, value_to_go  # noqa: E402

from rllib_metamapg import __version__, atomic  # noqa: E402
from rllib_metamapg.dice import reward_to_go  # noqa: E402
from rllib_metamapg.metamapg.torch.corrections import (  # noqa: E402
    AgentSlice, EpisodeLayout, compute_corrections)
from rllib_metamapg.rllib_base.torch.module_params import trainable_params  # noqa: E402
from rllib_metamapg.tabular.sampled import SampledEstimator  # noqa: E402
from rllib_metamapg.tabular.values import GameValues  # noqa: E402

from ray.rllib.core.columns import Columns  # noqa: E402

ETA = 0.5
EPISODES = (16, 64, 256, 2000)
BASELINES = ("none", "state", "exact")
CUTS = ("whole", "cut8")
FRAGMENT = 8  # the studies' rollout fragment: 256 steps / 32 vector envs


def state_critic(theta) -> torch.Tensor:
    """``b[s, i]``: the exact value-to-go averaged over the rounds that visit s,
    weighted by the visit probability (the MSE-optimal critic of the observation)."""
    v = value_to_go(theta)                                   # (S, T+1, N)
    values = GameValues(IPD, POLICY)
    p = values.transition(torch.tensor(np.asarray(theta)[None], dtype=torch.float64))[0]
    visit = torch.zeros(IPD.horizon, S, dtype=torch.float64)
    d = torch.zeros(S, dtype=torch.float64)
    d[0] = 1.0
    for t in range(IPD.horizon):
        visit[t] = d
        d = d @ p
    weight = visit.sum(0).clamp_min(1e-12)
    return torch.einsum("ts,stn->sn", visit, v[:, :IPD.horizon]) / weight[:, None]


class RegimeSampler:
    """Batches of 12-round IPD episodes laid out as the learner would receive them."""

    def __init__(self, theta, seed, baseline, cut):
        th = torch.tensor(np.asarray(theta)[None], dtype=torch.float64)
        self.est = SampledEstimator(GameValues(IPD, POLICY), torch.Generator().manual_seed(seed))
        self.theta, self.cut = th, cut
        self.logp = [torch.log_softmax(POLICY.logits(th, k)[0], -1) for k in range(2)]
        h = IPD.horizon
        if baseline == "none":
            self.value = torch.zeros(S, h + 1, 2, dtype=torch.float64)
        elif baseline == "exact":
            self.value = value_to_go(theta)
        else:
            self.value = state_critic(theta)[:, None, :].expand(S, h + 1, 2).clone()
            self.value[:, h] = 0.0  # the episode's end is terminal for every critic
        # Chunk boundaries of episode e: env steps run on across episodes, and the
        # fragment cuts wherever the running count crosses a multiple of FRAGMENT.
        self.episodes_seen = 0

    def _chunks(self, e):
        h = IPD.horizon
        if self.cut == "whole":
            return [(0, h)]
        start = (self.episodes_seen + e) * h
        cuts = [t for t in range(1, h) if (start + t) % FRAGMENT == 0]
        bounds = [0, *cuts, h]
        return list(zip(bounds[:-1], bounds[1:]))

    def batch(self, episodes):
        ep = self.est.sample(self.theta, episodes)
        states, rewards = ep.states[0], ep.rewards[0]        # (B, T), (B, T, N)
        acts = [a[0] for a in ep.actions]                    # (B, T)
        g = IPD.discount
        rows = {k: [] for k in ("state", "act0", "act1", "adv", "chunk", "step")}
        chunk_id = 0
        for e in range(states.shape[0]):
            for lo, hi in self._chunks(e):
                t = torch.arange(hi - lo, dtype=torch.float64)
                r = rewards[e, lo:hi]                         # (n, N)
                s = states[e, lo:hi]
                # The chunk's value at its end: the baseline at the next chunk's
                # first state and round (0 at the episode's end).
                boot = (self.value[states[e, hi], hi] if hi < IPD.horizon
                        else torch.zeros(2, dtype=torch.float64))
                disc = g ** t
                ret = reward_to_go(r * disc[:, None], dim=0) + (g ** (hi - lo)) * boot
                adv = ret - disc[:, None] * self.value[s, lo + t.long()]
                rows["state"].append(s)
                rows["act0"].append(acts[0][e, lo:hi])
                rows["act1"].append(acts[1][e, lo:hi])
                rows["adv"].append(adv)
                rows["chunk"].append(torch.full((hi - lo,), chunk_id))
                rows["step"].append(torch.arange(hi - lo))
                chunk_id += 1
        self.episodes_seen += states.shape[0]
        cat = {k: torch.cat(v) for k, v in rows.items()}
        obs = torch.nn.functional.one_hot(cat["state"], S).float()
        acts = [cat["act0"], cat["act1"]]
        logp = [self.logp[k][cat["state"], acts[k]].float() for k in range(2)]
        advs = [cat["adv"][:, k].float() for k in range(2)]
        layout = EpisodeLayout(cat["chunk"], cat["step"],
                               torch.ones(len(cat["chunk"]), dtype=torch.bool))
        return obs, acts, logp, advs, layout


def estimate(mods, data, player, length):
    obs, acts, logp, advs, layout = data
    order = [player, 1 - player]
    agents = [AgentSlice(mods[k], trainable_params(mods[k]), {Columns.OBS: obs}, acts[k],
                         logp[k], advs[k]) for k in order]
    c = compute_corrections(agents, None, inner_lr=ETA, unroll_length=length,
                            estimator="trajectory", layout=layout, split=True)
    return c.own[0].reshape(-1).numpy(), c.peer[0].reshape(-1).numpy()


def cell(theta, ref, *, episodes, baseline, cut, length, total, seed=0):
    mods = modules(theta)
    sampler = RegimeSampler(theta, seed, baseline, cut)
    batches = max(total // episodes, 8)
    per_batch = {"own": [], "peer": []}
    for _ in range(batches):
        data = sampler.batch(episodes)
        got = [estimate(mods, data, p, length) for p in range(2)]
        per_batch["own"].append(np.concatenate([g[0] for g in got]))
        per_batch["peer"].append(np.concatenate([g[1] for g in got]))
    out = {"batches": batches}
    for t, term in enumerate(("own", "peer")):
        r = np.concatenate([ref[t][0], ref[t][1]])
        stack = np.stack(per_batch[term])
        mean = stack.mean(0)
        nr = np.linalg.norm(r)
        out[term] = {
            "bias_cos": round(float(mean @ r / (np.linalg.norm(mean) * nr)), 3),
            "bias_error": round(float(np.linalg.norm(mean - r) / nr), 3),
            # The projection of the mean on the exact term: < 1 is a shrunken term.
            "projection": round(float(mean @ r / (nr * nr)), 3),
            "batch_error": round(float(np.median(np.linalg.norm(stack - r, axis=1) / nr)), 3),
        }
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/estimator_regime.json")
    ap.add_argument("--total-episodes", type=int, default=32000,
                    help="episodes per cell (batches = this / episodes per batch, >= 8)")
    ap.add_argument("--episodes", default=",".join(map(str, EPISODES)),
                    help="comma-separated episodes per batch")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    theta = THETAS["mixed"]
    sizes = [int(x) for x in args.episodes.split(",")]
    rows, start = [], time.perf_counter()
    for length in (1, 2):
        ref = exact(theta, ETA, unroll_length=length)
        for cut in CUTS:
            for baseline in BASELINES:
                for episodes in sizes:
                    t = time.perf_counter()
                    res = cell(theta, ref, episodes=episodes, baseline=baseline, cut=cut,
                               length=length, total=args.total_episodes)
                    row = {"unroll_length": length, "episodes": cut, "baseline": baseline,
                           "episodes_per_batch": episodes, **res,
                           "seconds": round(time.perf_counter() - t, 1)}
                    rows.append(row)
                    print(f"L={length} {cut:<5} {baseline:<5} {episodes:>5}/batch  "
                          + "  ".join(f"{k} cos {row[k]['bias_cos']:+.2f} "
                                      f"proj {row[k]['projection']:.2f} "
                                      f"batch err {row[k]['batch_error']:.2f}"
                                      for k in ("own", "peer")), flush=True)
    out = {"version": __version__, "game": "ipd (12 rounds, discount 0.96)",
           "theta": "THETAS['mixed'] of tests/ipd_samples.py", "inner_lr": ETA,
           "estimator": "trajectory, split stages", "rollout_fragment": FRAGMENT,
           "total_episodes_per_cell": args.total_episodes,
           "reference": "ExactEngine.corrections(form='unroll')",
           "seconds": round(time.perf_counter() - start, 1), "rows": rows}
    atomic.write_json(args.out, out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
