"""PROPS and MA-PROPS inside RLlib's multi-agent env runner (new API stack).

:class:`BehaviourConnector` is the last custom piece of the module-to-env
pipeline.  RLlib runs that pipeline once per env step with every acting agent of
every sub-env in one batch, after ``GetActions`` has drawn each agent's action
from its own target policy.  The piece groups the rows by episode and, for each
episode where every agent acts, redraws the actions from the behaviour policy
(:mod:`.behaviour_net`): one group of all agents (``ma_props``) or one group
per agent (``props``).  It overwrites ``ACTIONS`` and writes the *target's*
log-probability of the drawn action as ``ACTION_LOGP``, so PPO (and every
learner built on it) sees the batch as on-policy data; ``ACTION_DIST_INPUTS``
stay the target's.  Steps where only some agents act (turn-based envs) keep the
target's draws.  Greedy evaluation (``explore=False``) is left alone.

:class:`SamplerEnvRunner` empties the buffer when new target weights arrive and
logs the sampler's metrics (:mod:`.metrics`) after each ``sample()``.
:func:`install` puts both into a config; our algorithms call it when they are
built with ``sampler`` set (``config.training(sampler="ma_props")``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Dict, List, Optional, Sequence

import gymnasium as gym
import numpy as np
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core import COMPONENT_RL_MODULE
from ray.rllib.core.columns import Columns
from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import WEIGHTS_SEQ_NO

from rllib_metamapg.samplers import metrics as M
from rllib_metamapg.samplers.behaviour import BehaviourError
from rllib_metamapg.samplers.rllib_settings import check_spaces, parse_behaviour
from rllib_metamapg.samplers.behaviour_net import BehaviourGroup


class _Tally:
    """Per joint state: counts of each joint action and the summed target probabilities,
    for the buffer's sampling error (``1/2 sum_{s,a} |n(s,a) - sum_t pi(a|s_t)| / N``)."""

    def __init__(self, num_actions: Sequence[int], max_states: int):
        self.num_actions = tuple(num_actions)
        self.k = math.prod(self.num_actions)
        strides = [math.prod(self.num_actions[i + 1:]) for i in range(len(self.num_actions))]
        self.strides = np.asarray(strides)
        joint = np.arange(self.k)
        self.agent_action = [(joint // s) % a for s, a in zip(strides, self.num_actions)]
        self.max_states = max_states
        self.clear()

    def clear(self) -> None:
        self.states: Dict[bytes, List[np.ndarray]] = {}
        self.n = 0
        self.overflow = False

    def add(self, keys: List[bytes], target_probs: np.ndarray, joint: np.ndarray) -> None:
        self.n += len(keys)
        if self.overflow:
            return
        for key, probs, a in zip(keys, target_probs, joint):
            row = self.states.get(key)
            if row is None:
                if len(self.states) >= self.max_states:
                    self.overflow = True
                    self.states = {}
                    return
                row = self.states[key] = [np.zeros(self.k), np.zeros(self.k)]
            row[0][a] += 1.0
            row[1] += probs

    def tv(self) -> Optional[Dict[str, Any]]:
        """``{"joint": TV, "agents": [TV per agent]}``, or ``None`` when not computable."""
        if self.overflow or self.n == 0:
            return None
        counts = np.stack([r[0] for r in self.states.values()])
        probs = np.stack([r[1] for r in self.states.values()])
        joint = 0.5 * np.abs(counts - probs).sum() / self.n
        agents = []
        for i, a_i in enumerate(self.num_actions):
            onehot = np.eye(a_i)[self.agent_action[i]]  # (K, A_i)
            agents.append(0.5 * np.abs(counts @ onehot - probs @ onehot).sum() / self.n)
        return {"joint": float(joint), "agents": [float(x) for x in agents]}


class BehaviourConnector(ConnectorV2):
    """Module-to-env piece: draws the acting agents' actions from a behaviour policy.

    Args:
        kind: ``props`` or ``ma_props``.
        agents: The env's agents, in the order of the joint action.
        action_spaces, observation_spaces: Per agent.
        behaviour: ``config.behaviour`` (see :mod:`.rllib_settings`).
        seed: Seeds the Delta networks, the draws and the update's shuffles.
    """

    def __init__(self, input_observation_space=None, input_action_space=None, *,
                 kind: str, agents: Sequence[str], action_spaces: Dict[str, Any],
                 observation_spaces: Dict[str, Any], behaviour: Optional[dict] = None,
                 seed: int = 0, **kwargs):
        super().__init__(input_observation_space, input_action_space, **kwargs)
        if kind not in ("props", "ma_props"):
            raise BehaviourError(f"BehaviourConnector: kind={kind!r}; choose 'props' or "
                                 "'ma_props'.")
        self.kind, self.agents = kind, list(agents)
        self.settings = parse_behaviour(behaviour)
        self.counts = check_spaces(kind, self.agents, action_spaces, observation_spaces)
        self.obs_spaces = {a: observation_spaces[a] for a in self.agents}
        self.dims = {a: gym.spaces.flatdim(self.obs_spaces[a]) for a in self.agents}
        self.group_agents = ([tuple(self.agents)] if kind == "ma_props"
                             else [(a,) for a in self.agents])
        self.tally = _Tally([self.counts[a] for a in self.agents],
                            self.settings.tv_max_states)
        self.reseed(seed)
        self._modules_checked = False

    def reseed(self, seed: int) -> None:
        """Fresh behaviour networks, draws and shuffles from ``seed`` (each env runner
        passes its own)."""
        s = self.settings
        self.groups = [
            BehaviourGroup([self.counts[a] for a in agents],
                           sum(self.dims[a] for a in agents), s.update, s.hidden,
                           seed=int(seed) * 7919 + j)
            for j, agents in enumerate(self.group_agents)]
        self.tally.clear()

    def new_target(self) -> None:
        """New target weights arrived: the buffer starts again, pi_phi = pi_theta."""
        for g in self.groups:
            g.clear()
        self.tally.clear()

    def drain_metrics(self) -> Dict[str, Any]:
        """The metrics of the current buffer and of the updates since the last call."""
        out: Dict[str, Any] = {M.BUFFER_SIZE: self.tally.n}
        updates = [u for g in self.groups for u in g.updates]
        for g in self.groups:
            g.updates = []
        out[M.BEHAVIOUR_UPDATES] = len(updates)
        if updates:
            out[M.BEHAVIOUR_EPOCHS] = float(np.mean([u[0] for u in updates]))
            out[M.KL_AT_STOP] = float(np.mean([u[1] for u in updates]))
        tv = self.tally.tv()
        if tv is not None:
            out[M.JOINT_TV] = tv["joint"]
            out[M.AGENT_TV] = dict(zip(self.agents, tv["agents"]))
        return out

    def _agent_features(self, episodes: List[Any], agent: str) -> np.ndarray:
        """``(rows, dim)``: each episode's latest observation of ``agent``, flattened."""
        space = self.obs_spaces[agent]
        latest = [ep.agent_episodes[agent].get_observations(-1) for ep in episodes]
        if isinstance(space, gym.spaces.Box):  # the common case, without gym's dispatch
            return np.asarray(latest, np.float32).reshape(len(latest), -1)
        return np.stack([np.asarray(gym.spaces.flatten(space, o), np.float32).ravel()
                         for o in latest])

    def _check_modules(self, keys: Dict[str, tuple]) -> None:
        modules = [keys[a][2] for a in self.agents]
        if len(set(modules)) < len(modules):
            raise BehaviourError(
                f"sampler={self.kind!r} needs one module per agent; agents "
                f"{self.agents} map to modules {modules}. A shared module would give two "
                "agents one target policy row per step; wire one module per agent "
                "(our algorithms' default when multi_agent() is not called).")
        self._modules_checked = True

    @override(ConnectorV2)
    def __call__(self, *, rl_module, batch, episodes, explore=None, shared_data=None,
                 metrics=None, **kwargs):
        if not explore or Columns.ACTION_DIST_INPUTS not in batch:
            return batch
        dist = batch[Columns.ACTION_DIST_INPUTS]
        by_episode: Dict[str, Dict[str, tuple]] = defaultdict(dict)
        for key in dist:
            by_episode[key[0]][key[1]] = key
        rows = [e for e, keys in by_episode.items() if len(keys) == len(self.agents)
                and all(a in keys for a in self.agents)]
        if not rows:
            return batch
        if not self._modules_checked:
            self._check_modules(by_episode[rows[0]])
        episode_of = {e.id_: e for e in episodes}
        acting = [episode_of[e] for e in rows]
        logp = {}
        for a in self.agents:
            z = np.stack([np.asarray(dist[by_episode[e][a]][0], np.float64) for e in rows])
            z = z - z.max(-1, keepdims=True)
            logp[a] = z - np.log(np.exp(z).sum(-1, keepdims=True))
        feats = {a: self._agent_features(acting, a) for a in self.agents}
        actions: Dict[str, np.ndarray] = {}
        for group, agents in zip(self.groups, self.group_agents):
            x = np.concatenate([feats[a] for a in agents], -1)
            joint = group.draw(x, group.joint_logp([logp[a] for a in agents]))
            actions.update(zip(agents, group.split(joint)))
        acts, logps = batch[Columns.ACTIONS], batch[Columns.ACTION_LOGP]
        for a in self.agents:
            chosen = actions[a]
            own = logp[a][np.arange(len(rows)), chosen]
            for r, e in enumerate(rows):
                key = by_episode[e][a]
                # The same scalar type GetActions wrote (np.int32/np.int64, not 0-d arrays).
                acts[key] = [np.asarray(acts[key][0]).dtype.type(chosen[r])]
                logps[key] = [np.float32(own[r])]
        self._tally(feats, logp, actions, len(rows))
        return batch

    def _tally(self, feats, logp, actions, n) -> None:
        t = self.tally
        if t.overflow:
            t.n += n
            return
        x = np.concatenate([feats[a] for a in self.agents], -1)
        keys = [x[r].tobytes() for r in range(n)]
        joint_logp = sum(logp[a][:, t.agent_action[i]] for i, a in enumerate(self.agents))
        joint = sum(actions[a] * t.strides[i] for i, a in enumerate(self.agents))
        t.add(keys, np.exp(joint_logp), joint)


class BehaviourConnectorFactory:
    """``module_to_env_connector`` of a config with a behaviour sampler: the user's own
    pieces (if any), then :class:`BehaviourConnector`.  Picklable (Ray ships configs)."""

    def __init__(self, kind: str, behaviour: Optional[dict], user=None):
        self.kind, self.behaviour, self.user = kind, dict(behaviour or {}), user

    def __call__(self, env=None, spaces=None) -> List[ConnectorV2]:
        pieces: List[ConnectorV2] = []
        if self.user is not None:
            made = self.user(env, spaces)
            pieces = list(made) if isinstance(made, (list, tuple)) else [made]
        if env is None:  # a local env runner that never samples (remote ones do)
            return pieces
        inner = env.envs[0].unwrapped if hasattr(env, "envs") else env.unwrapped
        agents = list(inner.possible_agents)
        pieces.append(BehaviourConnector(
            kind=self.kind, agents=agents,
            action_spaces={a: inner.get_action_space(a) for a in agents},
            observation_spaces={a: inner.get_observation_space(a) for a in agents},
            behaviour=self.behaviour))
        return pieces


def behaviour_pieces(pipeline) -> List[BehaviourConnector]:
    """Every :class:`BehaviourConnector` in a (nested) connector pipeline."""
    if isinstance(pipeline, BehaviourConnector):
        return [pipeline]
    return [p for c in getattr(pipeline, "connectors", []) for p in behaviour_pieces(c)]


class SamplerEnvRunner(MultiAgentEnvRunner):
    """``MultiAgentEnvRunner`` that resets the behaviour buffer when new target weights
    arrive and logs the sampler's metrics after each ``sample()``."""

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        # Each runner its own stream: the same seed would correlate their draws.
        seed = int(self.config.seed or 0) * 1009 + int(self.worker_index or 0)
        for piece in behaviour_pieces(self._module_to_env):
            piece.reseed(seed)

    @override(MultiAgentEnvRunner)
    def set_state(self, state) -> None:
        before = self._weights_seq_no
        super().set_state(state)
        if COMPONENT_RL_MODULE in state and (state.get(WEIGHTS_SEQ_NO, 0) == 0
                                              or self._weights_seq_no != before):
            for piece in behaviour_pieces(self._module_to_env):
                piece.new_target()

    @override(MultiAgentEnvRunner)
    def sample(self, *args, **kwargs):
        out = super().sample(*args, **kwargs)
        for piece in behaviour_pieces(self._module_to_env):
            for key, value in piece.drain_metrics().items():
                if isinstance(value, dict):
                    for agent, v in value.items():
                        self.metrics.log_value((key, agent), v, window=1)
                else:
                    self.metrics.log_value(key, value, window=1)
        return out


def install(config):
    """``config`` collecting with its ``sampler`` (``props`` / ``ma_props``): our env
    runner and the behaviour piece after the user's own module-to-env pieces."""
    runner = config.env_runner_cls
    if runner is not None and not (isinstance(runner, type)
                                   and issubclass(runner, SamplerEnvRunner)):
        raise BehaviourError(
            f"sampler={config.sampler!r} runs in SamplerEnvRunner; env_runner_cls={runner!r}"
            " is set. Subclass rllib_metamapg.samplers.env_runner.SamplerEnvRunner instead.")
    user = config._module_to_env_connector
    if isinstance(user, BehaviourConnectorFactory):
        user = user.user
    config = config.copy(copy_frozen=False)
    return config.env_runners(
        env_runner_cls=runner or SamplerEnvRunner,
        module_to_env_connector=BehaviourConnectorFactory(config.sampler, config.behaviour,
                                                          user))
