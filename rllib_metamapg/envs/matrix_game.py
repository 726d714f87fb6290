"""Tabular games as RLlib ``MultiAgentEnv``s, with payoffs from the tabular engine.

One environment step is one round: every player acts at once and receives its
payoff for the joint action.  The observation is a one-hot of the memory-one
state the tabular engine uses (0 = start, ``1 + ravel(last joint action)``),
so a tabular RLModule over this observation is exactly the engine's policy.

Every step's info says whether the joint action is one of the game's ``targets``
(the joint actions the tabular engine counts as success), and the last step's info
gives the episode's fraction of on-target rounds, so evaluation can score "selected
the target" where summed payoffs cannot tell it apart (Chicken: both swerving and
one swerving sum to 0).  :class:`~rllib_metamapg.callbacks.OnTargetCallback` logs it.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import gymnasium as gym
import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from rllib_metamapg.tabular.games import MemoryOneGame, game_from_spec, get_game
from rllib_metamapg.envs.env_config import check_env_config

# The last step's info key: the episode's fraction of rounds played on a target.
ON_TARGET_RATE = "on_target_rate"


class MatrixGameEnv(MultiAgentEnv):
    """A normal-form or memory-one repeated game played for ``rounds`` rounds.

    Config keys:
        game: Built-in game name (default ``"stag_hunt"``) or a payoff spec
            mapping as accepted by :func:`~rllib_metamapg.tabular.games.game_from_spec`.
        rounds: Rounds per episode (default: the game's horizon, else 1).
    """

    def __init__(self, config: Optional[Dict[str, Any]] = None):
        super().__init__()
        config = check_env_config(config, ("game", "rounds"))
        spec = config.get("game", "stag_hunt")
        rounds = config.get("rounds")
        self.game = get_game(spec) if isinstance(spec, str) else game_from_spec(spec)
        if rounds is None:
            rounds = (self.game.horizon if isinstance(self.game, MemoryOneGame)
                      and self.game.horizon else 1)
        if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 1:
            raise ValueError(f"env_config.rounds={rounds!r} must be a positive integer.")
        self.rounds = rounds
        self.payoffs = self.game.payoffs.astype(np.float32)
        self.num_states = 1 + int(np.prod(self.game.num_actions))
        self.agents = self.possible_agents = [f"player_{i}"
                                              for i in range(self.game.num_players)]
        obs = gym.spaces.Box(0.0, 1.0, (self.num_states,), np.float32)
        self.observation_spaces = {a: obs for a in self.agents}
        self.action_spaces = {a: gym.spaces.Discrete(n)
                              for a, n in zip(self.agents, self.game.num_actions)}
        self._round = 0
        self._on_target = 0
        self._targets = frozenset(tuple(t) for t in self.game.targets)

    def _obs(self, state: int) -> Dict[str, np.ndarray]:
        one_hot = np.zeros(self.num_states, np.float32)
        one_hot[state] = 1.0
        return {a: one_hot.copy() for a in self.agents}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._round = 0
        self._on_target = 0
        return self._obs(0), {}

    def step(self, action_dict):
        missing = [a for a in self.agents if a not in action_dict]
        if missing:
            raise ValueError(f"step(): every player acts each round; missing {missing}.")
        joint = tuple(int(action_dict[a]) for a in self.agents)
        rewards = {a: float(self.payoffs[(i,) + joint]) for i, a in enumerate(self.agents)}
        self._round += 1
        done = self._round >= self.rounds
        state = 1 + int(np.ravel_multi_index(joint, self.game.num_actions))
        on_target = joint in self._targets
        self._on_target += int(on_target)
        info = {"joint_action": joint, "on_target": on_target}
        if done:
            info[ON_TARGET_RATE] = self._on_target / self.rounds
        return (self._obs(state), rewards, {"__all__": done}, {"__all__": False},
                {a: dict(info) for a in self.agents})


def one_module_per_agent(env: MultiAgentEnv) -> Dict[str, Any]:
    """``config.multi_agent(**...)`` arguments: one module per agent, named as the agent.

    Works for any env with ``possible_agents`` (``MetaMAPGConfig`` uses it as default).
    """
    # A list, not a set: module build order (and so which weights each agent
    # draws from the seeded RNG) must not depend on PYTHONHASHSEED.
    names = [_identity_mapping(a) for a in env.possible_agents]
    if len(set(names)) != len(names):
        raise ValueError(f"Agents {list(env.possible_agents)} give the module ids {names}, "
                         "which repeat (RLlib's module ids are strings); wire them with "
                         "config.multi_agent(policies=..., policy_mapping_fn=...).")
    return {"policies": names, "policy_mapping_fn": _identity_mapping}


def _identity_mapping(agent_id, episode=None, **kwargs):
    # RLlib's module ids are strings; agents may be ints (MultiAgentCartPole's 0, 1).
    return agent_id if isinstance(agent_id, str) else str(agent_id)
