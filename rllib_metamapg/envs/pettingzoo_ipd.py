"""``pettingzoo_ipd``: the repeated Prisoner's Dilemma as a PettingZoo ``ParallelEnv``.

The paper's stand-in for Melting Pot's PD-in-the-matrix.  Payoffs are the tabular
engine's ``ipd`` stage game (one source of truth); each player observes the last
joint action as a one-hot (index 0 before the first round).  RLlib reaches it
through its ``ParallelPettingZooEnv`` wrapper (see :class:`OrderedParallelPettingZooEnv`).
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv
from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

from rllib_metamapg.tabular.games import get_game
from rllib_metamapg.envs.env_config import check_env_config


class IteratedPrisonersDilemma(ParallelEnv):
    """Two players, actions 0 = cooperate, 1 = defect, ``rounds`` rounds per episode."""

    metadata = {"name": "pettingzoo_ipd_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(self, rounds: int = 12, render_mode: Optional[str] = None):
        if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 1:
            raise ValueError(f"env_config.rounds={rounds!r} must be a positive integer.")
        if render_mode is not None:
            raise ValueError(f"render_mode={render_mode!r}: this env does not render "
                             "(metadata['render_modes'] is empty); leave it None.")
        self.rounds = rounds
        self.render_mode = render_mode
        self.payoffs = get_game("ipd").stage.payoffs.astype(np.float32)  # [player, a0, a1]
        self.possible_agents = ["player_0", "player_1"]
        self.agents = []
        # One space object per player: seeding one player's space must not reseed
        # the other's.
        self._obs_spaces = {a: gym.spaces.Box(0.0, 1.0, (5,), np.float32)
                            for a in self.possible_agents}
        self._act_spaces = {a: gym.spaces.Discrete(2) for a in self.possible_agents}
        self._round = 0

    def observation_space(self, agent):
        return self._obs_spaces[agent]

    def action_space(self, agent):
        return self._act_spaces[agent]

    def _observe(self, state: int) -> Dict[str, np.ndarray]:
        one_hot = np.zeros(5, np.float32)
        one_hot[state] = 1.0
        return {a: one_hot.copy() for a in self.agents}

    def reset(self, seed: Optional[int] = None, options: Optional[dict] = None):
        if seed is not None:
            for k, agent in enumerate(self.possible_agents):
                self._act_spaces[agent].seed(seed + k)
                self._obs_spaces[agent].seed(seed + k)
        self.agents = list(self.possible_agents)
        self._round = 0
        return self._observe(0), {a: {} for a in self.agents}

    def step(self, actions: Dict[str, Any]):
        if not self.agents:  # after the last round, as PettingZoo's own wrappers do
            return {}, {}, {}, {}, {}
        if set(actions) != set(self.agents):
            raise ValueError(f"step(): both players act every round; got {sorted(actions)}.")
        a0, a1 = int(actions["player_0"]), int(actions["player_1"])
        rewards = {a: float(self.payoffs[i, a0, a1]) for i, a in enumerate(self.agents)}
        self._round += 1
        obs = self._observe(1 + 2 * a0 + a1)
        # The last round ends the game by its rules (the players know the length), so
        # it is a termination: PPO must not bootstrap a value past it, and the exact
        # engine's finite-horizon value is 0 there.  The ``ipd`` env does the same.
        done = self._round >= self.rounds
        terminations = {a: done for a in self.agents}
        truncations = {a: False for a in self.agents}
        infos = {a: {"joint_action": (a0, a1)} for a in self.agents}
        if done:
            self.agents = []
        return obs, rewards, terminations, truncations, infos


def parallel_env(rounds: int = 12, render_mode: Optional[str] = None) -> IteratedPrisonersDilemma:
    """PettingZoo's factory convention: the env as a ``ParallelEnv``."""
    return IteratedPrisonersDilemma(rounds, render_mode)


def env(rounds: int = 12, render_mode: Optional[str] = None):
    """PettingZoo's factory convention: the env as an ``AECEnv``."""
    from pettingzoo.utils.conversions import parallel_to_aec

    return parallel_to_aec(parallel_env(rounds, render_mode))


class OrderedParallelPettingZooEnv(ParallelPettingZooEnv):
    """RLlib's ``ParallelPettingZooEnv`` with the PettingZoo agent order kept.

    The RLlib wrapper fills ``agents`` from a set, so their order (and with it
    the order modules are built in, and which seeded weights each agent gets)
    would change with ``PYTHONHASHSEED`` and break paired seeds across Tune's
    worker processes.
    """

    def __init__(self, env):
        super().__init__(env)
        self.possible_agents = list(env.possible_agents)
        self.agents = list(env.agents)


def make_pettingzoo_ipd(config: Optional[Dict[str, Any]] = None) -> OrderedParallelPettingZooEnv:
    rounds = check_env_config(config, ("rounds",)).get("rounds", 12)
    return OrderedParallelPettingZooEnv(IteratedPrisonersDilemma(rounds))
