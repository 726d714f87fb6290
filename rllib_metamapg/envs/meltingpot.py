"""Melting Pot substrates as RLlib ``MultiAgentEnv``s (opt-in ``meltingpot`` extra).

A substrate is a ``dm_env`` environment with one entry per player in its
observations, rewards and specs.  :class:`MeltingPotEnv` turns that into RLlib's
per-agent dicts: agent ``player_i`` is the substrate's player i.  Each player's
own observations (everything but the global ``WORLD.*`` views) are flattened,
in key order, into one float32 vector, with ``uint8`` images scaled to [0, 1],
so the default MLP module takes them.

``make meltingpot`` builds ``dm-meltingpot`` offline (its sdist would download
the bots' assets, which substrates do not read); see docs/sweeps.md ("Melting Pot").
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import gymnasium as gym
import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from rllib_metamapg.env_specs import MELTINGPOT_INSTALL
from rllib_metamapg.envs.env_config import check_env_config

SUBSTRATES = {"meltingpot_pd_in_the_matrix": "prisoners_dilemma_in_the_matrix__repeated"}
WORLD_PREFIX = "WORLD."


def _space_of(spec) -> gym.spaces.Box:
    """The flattened Box of one observation spec (``dm_env.specs.Array`` or subclass)."""
    size = int(np.prod(spec.shape, dtype=np.int64))
    if np.dtype(spec.dtype) == np.uint8:
        return gym.spaces.Box(0.0, 1.0, (size,), np.float32)
    return gym.spaces.Box(-np.inf, np.inf, (size,), np.float32)


def _flatten(value, dtype) -> np.ndarray:
    flat = np.asarray(value).reshape(-1).astype(np.float32)
    return flat / 255.0 if np.dtype(dtype) == np.uint8 else flat


class MeltingPotEnv(MultiAgentEnv):
    """RLlib view of a built Melting Pot substrate.

    Args:
        substrate: The ``dm_env`` environment ``meltingpot.substrate.build``
            returns; closed with this env.
    """

    def __init__(self, substrate):
        super().__init__()
        self._env = substrate
        obs_specs = list(substrate.observation_spec())
        act_specs = list(substrate.action_spec())
        if len(obs_specs) != len(act_specs) or not obs_specs:
            raise ValueError("substrate: observation_spec() and action_spec() must list the "
                             "same, non-zero number of players.")
        self.agents = self.possible_agents = [f"player_{i}" for i in range(len(obs_specs))]
        self._keys: List[List[str]] = [sorted(k for k in spec if not k.startswith(WORLD_PREFIX))
                                       for spec in obs_specs]
        self._dtypes = [{k: spec[k].dtype for k in keys}
                        for spec, keys in zip(obs_specs, self._keys)]
        self.observation_spaces = {}
        for agent, spec, keys in zip(self.agents, obs_specs, self._keys):
            boxes = [_space_of(spec[k]) for k in keys]
            self.observation_spaces[agent] = gym.spaces.Box(
                np.concatenate([b.low for b in boxes]), np.concatenate([b.high for b in boxes]),
                dtype=np.float32)
        self.action_spaces = {a: gym.spaces.Discrete(int(s.num_values))
                              for a, s in zip(self.agents, act_specs)}

    def _observations(self, timestep) -> Dict[str, np.ndarray]:
        return {agent: np.concatenate([_flatten(obs[k], dtypes[k]) for k in keys])
                for agent, obs, keys, dtypes in zip(self.agents, timestep.observation,
                                                    self._keys, self._dtypes)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._observations(self._env.reset()), {}

    def step(self, action_dict):
        missing = [a for a in self.agents if a not in action_dict]
        if missing:
            raise ValueError(f"step(): every player acts each step; missing {missing}.")
        timestep = self._env.step([int(action_dict[a]) for a in self.agents])
        rewards = {a: float(r) for a, r in zip(self.agents, timestep.reward)}
        last = bool(timestep.last())
        # dm_env: a last step with discount 0 is a true end, otherwise a time limit.
        ended = last and float(np.min(timestep.discount)) == 0.0
        return (self._observations(timestep), rewards, {"__all__": ended},
                {"__all__": last and not ended}, {})

    def close(self):
        self._env.close()


def make_meltingpot(name: str, config: Optional[Dict[str, Any]] = None) -> MeltingPotEnv:
    """Builds the registered substrate ``name``.

    Config keys:
        roles: Player roles (default: the substrate's ``default_player_roles()``).

    Raises:
        ImportError: ``meltingpot`` is missing, with how to install it.
        ValueError: An unknown config key.
    """
    config = check_env_config(config, ("roles",))
    try:
        from meltingpot import substrate
    except ModuleNotFoundError as err:
        raise ImportError(f"env {name!r} needs dm-meltingpot ({err}): {MELTINGPOT_INSTALL}.") \
            from None
    roles: Optional[Sequence[str]] = config.get("roles")
    if roles is None:
        roles = substrate.get_factory(SUBSTRATES[name]).default_player_roles()
    return MeltingPotEnv(substrate.build(SUBSTRATES[name], roles=list(roles)))
