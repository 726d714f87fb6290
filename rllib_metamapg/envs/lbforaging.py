"""Level-Based Foraging (the ``lbforaging`` package, Gymnasium API) as an RLlib
``MultiAgentEnv``.

Each agent observes its own view (the package's ``(x, y, level)`` triplets of the
food and the players, 12 numbers for 2 players and 2 food) and has 6 actions
(none, north, south, west, east, load).  In the ``coop`` configurations every food
needs all players to load it together.  Rewards are the package's, normalised so
that one episode's rewards over all agents sum to at most 1 (every food loaded);
``penalty`` (default 0) is what each player that tries to load alone loses, the
knob MA-PROPS's paper turned (to 0.015) so that the expected gradient at uniform
policies favours cooperating.  An episode ends when every food is gone or after
``max_episode_steps`` (50) steps; the package reports both as termination.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ray.rllib.env.multi_agent_env import MultiAgentEnv

from rllib_metamapg.env_specs import LBF_INSTALL
from rllib_metamapg.envs.env_config import check_env_config

CONFIG_KEYS = ("field_size", "players", "max_num_food", "force_coop", "penalty",
               "sight", "max_episode_steps")
# The package's own registered settings for its "-coop" ids (lbforaging/__init__.py).
_PACKAGE_DEFAULTS = {"min_player_level": 1, "max_player_level": 2, "min_food_level": 1,
                     "max_food_level": None, "grid_observation": False}


def _foraging_class():
    try:
        from lbforaging.foraging import ForagingEnv
    except ModuleNotFoundError as err:
        raise ImportError(f"Level-Based Foraging needs the `lbforaging` package ({err}): "
                          f"{LBF_INSTALL}.") from None
    return ForagingEnv


class LevelBasedForagingEnv(MultiAgentEnv):
    """One LBF game; ``config`` keys are :data:`CONFIG_KEYS` (see the module docstring).

    Args:
        config: ``field_size`` (int, a square board), ``players``, ``max_num_food``,
            ``force_coop``, ``penalty``, ``sight`` (default: the whole board),
            ``max_episode_steps``.
    """

    def __init__(self, config: Optional[Dict[str, Any]] = None):
        super().__init__()
        config = check_env_config(config, CONFIG_KEYS)
        size = int(config.get("field_size", 8))
        players = int(config.get("players", 2))
        penalty = float(config.get("penalty", 0.0))
        if size < 3 or players < 2 or int(config.get("max_num_food", 2)) < 1:
            raise ValueError(f"env_config: field_size={size} (>= 3), players={players} "
                             "(>= 2) and max_num_food (>= 1) are out of range.")
        if not 0.0 <= penalty <= 1.0:
            raise ValueError(f"env_config.penalty={penalty!r} must lie in [0, 1].")
        self._env = _foraging_class()(
            players=players, field_size=(size, size),
            max_num_food=int(config.get("max_num_food", 2)),
            sight=int(config.get("sight", size)),
            max_episode_steps=int(config.get("max_episode_steps", 50)),
            force_coop=bool(config.get("force_coop", True)), penalty=penalty,
            **_PACKAGE_DEFAULTS)
        self.agents = self.possible_agents = [f"agent_{i}" for i in range(players)]
        self.observation_spaces = dict(zip(self.agents, self._env.observation_space))
        self.action_spaces = dict(zip(self.agents, self._env.action_space))

    def reset(self, *, seed=None, options=None):
        obs, _ = self._env.reset(seed=seed)
        return dict(zip(self.agents, obs)), {}

    def step(self, action_dict):
        missing = [a for a in self.agents if a not in action_dict]
        if missing:
            raise ValueError(f"step(): every player acts each step; missing {missing}.")
        obs, rewards, terminated, truncated, _ = self._env.step(
            tuple(int(action_dict[a]) for a in self.agents))
        return (dict(zip(self.agents, obs)),
                {a: float(r) for a, r in zip(self.agents, rewards)},
                {"__all__": bool(terminated)}, {"__all__": bool(truncated)}, {})

    def close(self):
        self._env.close()
