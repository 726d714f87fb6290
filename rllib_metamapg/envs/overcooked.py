"""Overcooked-AI layouts as RLlib ``MultiAgentEnv``s (two cooks, featurised observations).

The game logic is the ``overcooked`` package's ``OvercookedGridworld`` (the
maintained NumPy-2 fork of overcooked-ai, same layouts and dynamics).  We drive
the MDP directly instead of the package's env classes: its ``Overcooked``
wrapper sums the cooks' rewards into one team reward, and its ``OvercookedEnv``
pickles motion planners into site-packages on the first step.

Rewards follow the paper's App. E.4: each cook gets half of the sparse soup
reward (a delivery pays 20, so 10 each) plus ``shaped_reward_coef`` times its
own shaped reward (onion into pot 3, dish pickup 3, soup pickup 5).

Observations are the package's ``featurize_state`` (96 numbers for two cooks:
own features, the partner's, relative and absolute position).  It measures
"closest" with path lengths from a motion planner; :class:`PlannerDistances`
supplies them (see there for why it is not the package's own planner call).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import gymnasium as gym
import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from rllib_metamapg.env_specs import OVERCOOKED_INSTALL
from rllib_metamapg.envs.env_config import check_env_config

AGENTS = ("cook_0", "cook_1")
CONFIG_KEYS = ("layout", "horizon", "shaped_reward_coef", "counters_visible")


def _overcooked():
    try:
        from overcooked.mdp.actions import Action
        from overcooked.mdp.overcooked_mdp import OvercookedGridworld
        from overcooked.planning.planners import MotionPlanner
    except ModuleNotFoundError as err:
        raise ImportError(f"Overcooked envs need the `overcooked` package ({err}): "
                          f"{OVERCOOKED_INSTALL}.") from None
    return Action, OvercookedGridworld, MotionPlanner


class PlannerDistances:
    """The ``mlam`` argument of ``OvercookedGridworld.featurize_state``.

    ``featurize_state`` calls ``mlam.motion_planner.min_cost_to_feature(start,
    locations, with_argmin=True)`` and expects ``None`` as the location when
    nothing is reachable (upstream overcooked-ai's contract).  The fork's planner
    takes no ``with_argmin`` and answers the first location even when none is
    reachable, so this adapter computes the same minimum from the fork's
    planner tables with upstream's semantics.  Results are cached: a layout has
    few (position, orientation) states.
    """

    def __init__(self, planner):
        self.planner = planner
        self.motion_planner = self
        self._cache: Dict[Tuple, Tuple[float, Optional[Tuple]]] = {}

    def _closest(self, start: Tuple, locations: Tuple) -> Tuple[float, Optional[Tuple]]:
        key = (start, locations)
        if key not in self._cache:
            self._cache[key] = self._search(start, locations)
        return self._cache[key]

    def _search(self, start: Tuple, locations: Tuple) -> Tuple[float, Optional[Tuple]]:
        planner = self.planner
        best, cost = None, np.inf
        for location in locations:
            for goal in planner.motion_goals_for_pos[location]:
                if planner.is_valid_motion_start_goal_pair(start, goal):
                    distance = planner.get_gridworld_distance(start, goal)
                    if distance < cost:
                        best, cost = location, distance
        return cost + 1, best  # + 1: the interact action, as upstream counts it

    def min_cost_to_feature(self, start_pos_and_or, feature_pos_list: Sequence,
                            with_argmin: bool = False):
        """Steps to reach and interact with the closest of ``feature_pos_list``.

        Returns:
            The cost (``inf`` when none is reachable), or ``(cost, location)``
            with ``with_argmin`` (``location`` is ``None`` when none is reachable).
        """
        cost, best = self._closest(start_pos_and_or, tuple(feature_pos_list))
        return (cost, best) if with_argmin else cost


class OvercookedEnv(MultiAgentEnv):
    """Two cooks on an Overcooked-AI layout; one env step moves both.

    Config keys:
        layout: Layout name from the ``overcooked`` package (default
            ``"forced_coordination"``).
        horizon: Steps per episode (default 400); the episode is truncated there.
        shaped_reward_coef: Weight of each cook's shaped reward (default 0.5,
            overcooked-ai's default; 0 gives the sparse reward alone).
        counters_visible: Let the features' "closest onion/dish/soup" see items
            lying on counters (default False).  overcooked-ai featurises with
            ``counter_goals=[]``, under which a counter is never a reachable
            goal, so an onion handed over the middle counter of
            forced_coordination reads as absent; True makes every counter a
            goal.  False reproduces the original observations.

    Per-agent infos carry ``sparse_reward`` (20 to the cook that delivered) and
    ``shaped_reward`` (unweighted) of the step.
    """

    def __init__(self, config: Optional[Dict[str, Any]] = None):
        super().__init__()
        config = check_env_config(config, CONFIG_KEYS)
        self.horizon = config.get("horizon", 400)
        if isinstance(self.horizon, bool) or not isinstance(self.horizon, int) \
                or self.horizon < 1:
            raise ValueError(f"env_config.horizon={self.horizon!r} must be a positive integer.")
        self.shaped_reward_coef = config.get("shaped_reward_coef", 0.5)
        if isinstance(self.shaped_reward_coef, bool) \
                or not isinstance(self.shaped_reward_coef, (int, float)) \
                or not np.isfinite(self.shaped_reward_coef) or self.shaped_reward_coef < 0:
            raise ValueError(f"env_config.shaped_reward_coef={self.shaped_reward_coef!r} "
                             "must be a finite number >= 0.")
        action, gridworld, planner = _overcooked()
        self.layout = config.get("layout", "forced_coordination")
        try:
            self.mdp = gridworld.from_layout_name(self.layout)
        except FileNotFoundError:
            raise ValueError(f"env_config.layout={self.layout!r} is not a layout of the "
                             "`overcooked` package (see overcooked/data/layouts).") from None
        if self.mdp.num_players != len(AGENTS):
            raise ValueError(f"env_config.layout={self.layout!r} has {self.mdp.num_players} "
                             f"cooks; this env is for {len(AGENTS)}.")
        self._actions = action.INDEX_TO_ACTION
        counters_visible = config.get("counters_visible", False)
        if not isinstance(counters_visible, bool):
            raise ValueError(f"env_config.counters_visible={counters_visible!r} must be "
                             "true or false.")
        counter_goals = self.mdp.get_counter_locations() if counters_visible else []
        self._distances = PlannerDistances(planner(self.mdp, counter_goals=counter_goals))
        self.agents = self.possible_agents = list(AGENTS)
        obs = gym.spaces.Box(-np.inf, np.inf, self.mdp.get_featurize_state_shape(), np.float32)
        self.observation_spaces = {a: obs for a in self.agents}
        self.action_spaces = {a: gym.spaces.Discrete(len(self._actions)) for a in self.agents}
        self.state = None
        self._t = 0

    def _obs(self) -> Dict[str, np.ndarray]:
        features = self.mdp.featurize_state(self.state, self._distances)
        return {a: np.asarray(f, np.float32) for a, f in zip(self.agents, features)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = self.mdp.get_standard_start_state()
        self._t = 0
        return self._obs(), {}

    def step(self, action_dict):
        missing = [a for a in self.agents if a not in action_dict]
        if missing:
            raise ValueError(f"step(): both cooks act every step; missing {missing}.")
        joint = tuple(self._actions[int(action_dict[a])] for a in self.agents)
        self.state, info = self.mdp.get_state_transition(self.state, joint)
        self._t += 1
        sparse = info["sparse_reward_by_agent"]
        shaped = info["shaped_reward_by_agent"]
        half_soup = 0.5 * float(sum(sparse))
        rewards = {a: half_soup + self.shaped_reward_coef * float(shaped[i])
                   for i, a in enumerate(self.agents)}
        truncated = self._t >= self.horizon
        infos = {a: {"sparse_reward": float(sparse[i]), "shaped_reward": float(shaped[i])}
                 for i, a in enumerate(self.agents)}
        return (self._obs(), rewards, {"__all__": False}, {"__all__": truncated}, infos)
