"""Sampled IPD episodes in the shapes the learner's corrections take (test helper).

Episodes come from the tabular engine's sampler at a fixed theta; each row is one
agent's step, with a one-hot memory-one state as its observation.  Advantages are
``gamma^t (G_t - V_t(s_t))``: the discounted reward-to-go with the exact
state-and-time value as baseline, which depends on neither the step's nor later
actions and so keeps every DiCE derivative unbiased while removing most variance.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from ray.rllib.core.columns import Columns

from rllib_metamapg.dice import reward_to_go
from rllib_metamapg.metamapg.torch.corrections import (
    AgentSlice, EpisodeLayout)
from rllib_metamapg.rllib_base.torch.module_params import trainable_params
from rllib_metamapg.models import TabularPPOTorchRLModule
from rllib_metamapg.tabular.exact import ExactEngine
from rllib_metamapg.tabular.games import get_game
from rllib_metamapg.tabular.policies import TabularPolicy
from rllib_metamapg.tabular.sampled import SampledEstimator
from rllib_metamapg.tabular.values import GameValues

IPD = get_game("ipd")  # 12 rounds, discount 0.96
POLICY = TabularPolicy.for_game(IPD)
S = IPD.num_states
EPISODES_PER_BATCH = 2000
THETAS = {
    "cooperative": np.full(2 * S, 2.0),    # p(C) = 0.88 in every state
    "defecting": np.full(2 * S, -2.0),     # p(C) = 0.12
    "mixed": np.random.default_rng(0).normal(0.0, 0.7, 2 * S),
}


def modules(theta):
    """One tabular module per player whose logits are theta's blocks."""
    space = gym.spaces.Box(0.0, 1.0, (S,), np.float32)
    return [TabularPPOTorchRLModule(
        observation_space=space, action_space=gym.spaces.Discrete(2),
        model_config={"init_logit": np.asarray(theta)[k * S:(k + 1) * S].tolist()})
        for k in range(2)]


def exact(theta, eta, form="unroll", unroll_length=1, game=IPD):
    """The exact engine's (own, peer), each ``(players, S)``."""
    values = GameValues(game, TabularPolicy.for_game(game))
    own, peer = ExactEngine(values).corrections(
        torch.tensor(np.asarray(theta)[None], dtype=torch.float64), eta, form=form,
        unroll_length=unroll_length)
    return own[0].numpy().reshape(2, S), peer[0].numpy().reshape(2, S)


def value_to_go(theta, game=IPD):
    """``V[s, t, i]``: player i's exact discounted value from state s at round t."""
    values = GameValues(game, TabularPolicy.for_game(game))
    th = torch.tensor(np.asarray(theta)[None], dtype=torch.float64)
    r, p = values.stage_rewards(th)[0], values.transition(th)[0]
    v = torch.zeros(S, game.horizon + 1, 2, dtype=torch.float64)
    for t in range(game.horizon - 1, -1, -1):
        v[:, t] = r + game.discount * p @ v[:, t + 1]
    return v


class Sampler:
    """Batches of IPD episodes at a fixed theta, as per-player row tensors."""

    def __init__(self, theta, seed=0, baseline=True):
        self.theta = torch.tensor(np.asarray(theta)[None], dtype=torch.float64)
        self.est = SampledEstimator(GameValues(IPD, POLICY),
                                    torch.Generator().manual_seed(seed))
        self.baseline = value_to_go(theta) if baseline else None
        self.logp = [torch.log_softmax(POLICY.logits(self.theta, k)[0], -1)
                     for k in range(2)]

    def batch(self, episodes):
        """``(obs, actions, logp, advantages, episode, step)``; per-player lists."""
        ep = self.est.sample(self.theta, episodes)
        states = ep.states[0]                               # (B, T)
        b, t = states.shape
        disc = IPD.discount ** torch.arange(t, dtype=torch.float64)
        adv = reward_to_go(ep.rewards[0] * disc[None, :, None], dim=1)  # (B, T, N)
        if self.baseline is not None:
            adv = adv - self.baseline[states, torch.arange(t)[None, :]] * disc[None, :, None]
        flat = states.reshape(-1)
        obs = torch.nn.functional.one_hot(flat, S).float()
        acts = [a[0].reshape(-1) for a in ep.actions]
        logp = [self.logp[k][flat, acts[k]].float() for k in range(2)]
        advs = [adv[..., k].reshape(-1).float() for k in range(2)]
        episode = torch.arange(b).repeat_interleave(t)
        step = torch.arange(t).repeat(b)
        return obs, acts, logp, advs, episode, step


def slices(mods, data, player):
    """``AgentSlice``s for ``player`` first, then its peer, and the layout."""
    obs, acts, logp, advs, episode, step = data
    order = [player, 1 - player]
    agents = [AgentSlice(mods[k], trainable_params(mods[k]), {Columns.OBS: obs}, acts[k],
                         logp[k], advs[k]) for k in order]
    return agents, EpisodeLayout(episode, step, torch.ones_like(episode, dtype=torch.bool))


def match(est, ref, floor):
    """``(cos, relative error)``; the error is relative to ``max(|ref|, floor)``."""
    nr = np.linalg.norm(ref)
    cos = float(est @ ref / (np.linalg.norm(est) * nr)) if nr > 0 else float("nan")
    return cos, float(np.linalg.norm(est - ref) / max(nr, floor))
