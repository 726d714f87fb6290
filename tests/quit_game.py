"""A prisoner's dilemma where either player may quit: agents that end at different times.

Two players, ``ROUNDS`` rounds, actions C, D and Q (quit).  While both play, the
stage is the IPD's; a player who quits gets ``QUIT`` and leaves the game for
good, and the one who stays gets ``ALONE[action]`` each round (``QUIT`` if it
quits too).  The game ends when nobody is left or after ``ROUNDS`` rounds.
A player's tabular policy reads one of ``S`` states: the last joint action
while both play, or "none" (the start, and every round after the peer left: a
player sees no joint action then).  Sharing that state is what makes agent i's
early end matter to its corrections: the peer's later steps update the peer's
policy in a state whose behaviour i's return depends on.

Test helper with two independent computations:

* :func:`exact_corrections`: the own and peer terms by enumerating every joint
  history (no sampling), with autograd through the players' values;
* :class:`QuitSampler`: Monte-Carlo episodes as each agent's rows (only the
  steps it acted at), with the exact value-to-go of the game's Markov state as
  baseline, in the columns the learner's batches have.
"""

from __future__ import annotations

import functools
import itertools
from typing import Dict, List, Tuple

import numpy as np
import torch

from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing

from rllib_metamapg.connectors.peer_columns import EPISODE_COLUMN, STEP_COLUMN

ROUNDS = 3
C, D, Q = 0, 1, 2
A = 3
S = 5  # 0 none (start or alone), 1-4 last joint action (1 + 2 a0 + a1) while both play
ALONE_STATE = 0
IPD = {(C, C): (-1.0, -1.0), (C, D): (-3.0, 0.0), (D, C): (0.0, -3.0), (D, D): (-2.0, -2.0)}
QUIT = -1.5
ALONE = (-0.5, -1.0, QUIT)


def step(state: int, present: Tuple[bool, bool], actions: Dict[int, int]):
    """``(rewards per player, next state, next presence)``; ``actions`` of present players."""
    rewards = [0.0, 0.0]
    if all(present) and Q not in actions.values():
        rewards = list(IPD[(actions[0], actions[1])])
        return rewards, 1 + 2 * actions[0] + actions[1], present
    for k, a in actions.items():
        rewards[k] = QUIT if a == Q else ALONE[a]
    nxt = tuple(present[k] and actions.get(k) != Q for k in range(2))
    return rewards, ALONE_STATE, nxt


def _histories():
    """Every complete history: ``[(state, presence, actions, rewards)]`` per round."""
    out = []

    def grow(t, state, present, hist):
        if t == ROUNDS or not any(present):
            out.append(hist)
            return
        players = [k for k in range(2) if present[k]]
        for acts in itertools.product(range(A), repeat=len(players)):
            actions = dict(zip(players, acts))
            rewards, nxt, still = step(state, present, actions)
            grow(t + 1, nxt, still, hist + [(state, present, actions, rewards)])

    grow(0, 0, (True, True), [])
    return out


HISTORIES = _histories()


def values(theta: torch.Tensor) -> torch.Tensor:
    """``(2,)`` each player's exact expected return; ``theta`` ``(2, S, A)`` logits."""
    logp = torch.log_softmax(theta, -1)
    total = theta.new_zeros(2)
    for hist in HISTORIES:
        lp = sum(logp[k, s, a] for s, _, acts, _ in hist for k, a in acts.items())
        ret = torch.tensor([sum(r[k] for *_, r in hist) for k in range(2)],
                           dtype=theta.dtype)
        total = total + torch.exp(lp) * ret
    return total


def exact_corrections(theta: np.ndarray, eta: float):
    """Exact ``(own, peer)``, each ``(2, S, A)``: the unroll form with one inner step."""
    th = [torch.tensor(theta[k], dtype=torch.float64, requires_grad=True) for k in range(2)]
    v = values(torch.stack(th))
    inner = [torch.autograd.grad(v[k], th[k], create_graph=True)[0] for k in range(2)]
    nxt = [th[k] + eta * inner[k] for k in range(2)]
    own, peer = [], []
    for i in range(2):
        at = [x.detach().requires_grad_(True) for x in nxt]
        G = torch.autograd.grad(values(torch.stack(at))[i], at)
        j = 1 - i
        own.append(torch.autograd.grad((nxt[i] * G[i]).sum(), th[i],
                                       retain_graph=True)[0] - G[i])
        peer.append(torch.autograd.grad((nxt[j] * G[j]).sum(), th[i], retain_graph=True)[0])
    return torch.stack(own).numpy(), torch.stack(peer).numpy()


@functools.lru_cache(maxsize=None)
def _value_to_go(theta_key: bytes, t: int, state: int, present: Tuple[bool, bool]):
    theta = np.frombuffer(theta_key).reshape(2, S, A)
    if t == ROUNDS or not any(present):
        return np.zeros(2)
    probs = np.exp(theta - theta.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    players = [k for k in range(2) if present[k]]
    total = np.zeros(2)
    for acts in itertools.product(range(A), repeat=len(players)):
        actions = dict(zip(players, acts))
        p = np.prod([probs[k, state, a] for k, a in actions.items()])
        rewards, nxt, still = step(state, present, actions)
        total += p * (np.asarray(rewards) + _value_to_go(theta_key, t + 1, nxt, still))
    return total


class QuitSampler:
    """Episodes at a fixed theta as per-agent row batches (only the steps each acted)."""

    def __init__(self, theta: np.ndarray, seed: int = 0, baseline: bool = True):
        self.theta = np.asarray(theta, np.float64)
        self.key = self.theta.tobytes()
        probs = np.exp(self.theta - self.theta.max(-1, keepdims=True))
        self.probs = probs / probs.sum(-1, keepdims=True)
        self.rng = np.random.default_rng(seed)
        self.baseline = baseline

    def batch(self, episodes: int) -> Dict[int, Dict[str, torch.Tensor]]:
        rows: Dict[int, Dict[str, List]] = {k: {c: [] for c in (
            "obs", "act", "logp", "rew", "ep", "t", "base")} for k in range(2)}
        for e in range(episodes):
            state, present, t = 0, (True, True), 0
            while t < ROUNDS and any(present):
                base = (_value_to_go(self.key, t, state, present) if self.baseline
                        else np.zeros(2))
                actions = {k: int(self.rng.choice(A, p=self.probs[k, state]))
                           for k in range(2) if present[k]}
                rewards, nxt, still = step(state, present, actions)
                for k, a in actions.items():
                    r = rows[k]
                    r["obs"].append(state)
                    r["act"].append(a)
                    r["logp"].append(np.log(self.probs[k, state, a]))
                    r["rew"].append(rewards[k])
                    r["ep"].append(e)
                    r["t"].append(t)
                    r["base"].append(base[k])
                state, present, t = nxt, still, t + 1
        out = {}
        for k, r in rows.items():
            ep, rew = np.asarray(r["ep"]), np.asarray(r["rew"])
            # Reward-to-go within the episode (rows of one episode are consecutive).
            togo = np.zeros_like(rew)
            for i in range(len(rew) - 1, -1, -1):
                same = i + 1 < len(rew) and ep[i + 1] == ep[i]
                togo[i] = rew[i] + (togo[i + 1] if same else 0.0)
            out[k] = {
                Columns.OBS: torch.nn.functional.one_hot(torch.as_tensor(r["obs"]), S).float(),
                Columns.ACTIONS: torch.as_tensor(r["act"]),
                Columns.ACTION_LOGP: torch.as_tensor(r["logp"], dtype=torch.float32),
                Postprocessing.ADVANTAGES: torch.as_tensor(togo - np.asarray(r["base"]),
                                                           dtype=torch.float32),
                EPISODE_COLUMN: torch.as_tensor(ep),
                STEP_COLUMN: torch.as_tensor(r["t"]),
            }
        return out
