"""The trajectory estimator through RLlib's connector and learner path on the IPD.

* On episodes from RLlib's own env runner (12 rounds, with episode chunks cut by
  the sample boundary), the corrections the learner reports are exactly
  ``compute_corrections`` on a layout the test derives from the episodes
  themselves: the connector's episode/step columns, peer alignment, loss mask,
  split and normalisation are what the estimator expects.
* With a frozen policy (lr 0), averaged over updates, the learner's corrections
  equal the exact engine's (cos >= 0.95, error <= 10 % per player), accounting
  for what PPO's pipeline does to the advantages: GAE with gamma = lambda = 1 and
  the (frozen) critic as baseline gives ``G_t - b(s_t)``, which RLlib then
  standardises per module; a constant shift is a valid baseline and the scale
  ``1/sigma_k`` is a rescaled game, so the oracle is the exact engine on
  ``payoffs[k] / sigma_k``.
"""

import gymnasium as gym
import numpy as np
import pytest
import torch

from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.env.multi_agent_episode import MultiAgentEpisode
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

from ipd_samples import IPD, POLICY, S, THETAS, exact, match
from rllib_metamapg import MetaMAPGConfig, TabularPPOTorchRLModule
from rllib_metamapg.metamapg.torch.corrections import (
    AgentSlice, EpisodeLayout, compute_corrections)
from rllib_metamapg.rllib_base.torch.module_params import trainable_params
from rllib_metamapg.tabular.games import MemoryOneGame, game_from_spec
from rllib_metamapg.tabular.sampled import SampledEstimator
from rllib_metamapg.tabular.values import GameValues

AGENTS = ("player_0", "player_1")
ETA = 0.5


def frozen(theta, rounds, batch, estimator="trajectory"):
    spec = MultiRLModuleSpec(rl_module_specs={
        a: RLModuleSpec(module_class=TabularPPOTorchRLModule,
                        model_config={"init_logit": np.asarray(theta)[k * S:(k + 1) * S]
                                      .tolist()})
        for k, a in enumerate(AGENTS)})
    return (MetaMAPGConfig().environment("ipd", env_config={"rounds": rounds})
            .rl_module(rl_module_spec=spec)
            .training(arm="meta_mapg", lr=0.0, gamma=1.0, lambda_=1.0, entropy_coeff=0.0,
                      train_batch_size_per_learner=batch, minibatch_size=batch,
                      num_epochs=1, inner_lr=ETA, correction_clip=None,
                      correction_estimator=estimator)
            .env_runners(num_env_runners=0, num_envs_per_env_runner=16)
            .debugging(seed=0))


def update(learner, episodes):
    steps = sum(e.env_steps() for e in episodes)
    learner.update(episodes=episodes, timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: steps},
                   num_epochs=1, minibatch_size=steps + len(episodes))


def expected_from_episodes(learner, lengths, estimator):
    """``compute_corrections`` per module on rows laid out from the episode lengths
    (taken before the update: PPO's connector lengthens the episodes in place)."""
    batch = {a: learner.train_batch(a) for a in AGENTS}
    # PPO appends one artificial (masked) step to every chunk; rows follow the
    # episodes in order, so the layout comes from the episode lengths alone.
    lengths = torch.tensor(lengths) + 1
    episode = torch.repeat_interleave(torch.arange(len(lengths)), lengths)
    step = torch.cat([torch.arange(n) for n in lengths.tolist()])
    mods = [learner.module[a].unwrapped() for a in AGENTS]
    out = {}
    for i, mid in enumerate(AGENTS):
        order = [i, 1 - i]
        rows = [batch[AGENTS[k]] for k in order]
        agents = [AgentSlice(mods[k], trainable_params(mods[k]), {Columns.OBS: b[Columns.OBS]},
                             b[Columns.ACTIONS], b[Columns.ACTION_LOGP],
                             b[Postprocessing.ADVANTAGES]) for k, b in zip(order, rows)]
        mask = rows[0][Columns.LOSS_MASK] & rows[1][Columns.LOSS_MASK]
        out[mid] = compute_corrections(agents, mask, inner_lr=ETA, estimator=estimator,
                                       layout=EpisodeLayout(episode, step, mask))
    return out


@pytest.mark.parametrize("estimator", ["trajectory", "per_step"])
def test_learner_reports_the_estimator_on_env_runner_episodes(ray_local, estimator):
    algo = frozen(THETAS["mixed"], 12, 24 * 12, estimator).build_algo()
    try:
        learner = algo.learner_group._learner
        algo.env_runner.sample(num_timesteps=24 * 12 + 40, random_actions=False)
        # The second sample starts with the continuations of cut episodes.
        episodes = algo.env_runner.sample(num_timesteps=24 * 12, random_actions=False)
        assert any(e.env_t_started > 0 for e in episodes)
        assert any(not e.is_done for e in episodes)
        lengths = [len(e.agent_episodes[AGENTS[0]]) for e in episodes]
        update(learner, episodes)
        got = learner.last_corrections()
        want = expected_from_episodes(learner, lengths, estimator)
        other = expected_from_episodes(
            learner, lengths, "per_step" if estimator == "trajectory" else "trajectory")
        for mid in AGENTS:
            for x, y in zip(got[mid].own + got[mid].peer + got[mid].pg,
                            want[mid].own + want[mid].peer + want[mid].pg):
                torch.testing.assert_close(x, y)
            assert not torch.allclose(got[mid].peer[0], other[mid].peer[0])
        assert algo.train()["metamapg"]["correction_estimator"] == estimator
    finally:
        algo.stop()


def ipd_episodes(theta, rounds, count, gen):
    """``count`` IPD episodes of the env's format drawn by the tabular sampler."""
    game = MemoryOneGame("ipd", IPD.stage, discount=1.0, horizon=rounds)
    values = GameValues(game, POLICY)
    th = torch.tensor(np.asarray(theta)[None], dtype=torch.float64)
    ep = SampledEstimator(values, gen).sample(th, count)
    states, actions = ep.states[0].numpy(), [a[0].numpy() for a in ep.actions]
    rewards = ep.rewards[0].numpy()
    logp = [torch.log_softmax(POLICY.logits(th, k)[0], -1).numpy() for k in range(2)]
    eye = np.eye(S, dtype=np.float32)
    obs_space = gym.spaces.Dict({a: gym.spaces.Box(0.0, 1.0, (S,), np.float32)
                                 for a in AGENTS})
    act_space = gym.spaces.Dict({a: gym.spaces.Discrete(2) for a in AGENTS})
    episodes = []
    for b in range(count):
        last = 1 + 2 * actions[0][b, -1] + actions[1][b, -1]
        seq = list(states[b]) + [last]
        episodes.append(MultiAgentEpisode(
            observations=[{a: eye[s] for a in AGENTS} for s in seq],
            actions=[{a: int(actions[k][b, t]) for k, a in enumerate(AGENTS)}
                     for t in range(rounds)],
            rewards=[{a: float(rewards[b, t, k]) for k, a in enumerate(AGENTS)}
                     for t in range(rounds)],
            extra_model_outputs=[{a: {Columns.ACTION_LOGP: np.float32(
                logp[k][states[b, t], actions[k][b, t]]),
                Columns.ACTION_DIST_INPUTS: np.zeros(2, np.float32)}
                for k, a in enumerate(AGENTS)} for t in range(rounds)],
            terminateds={"__all__": True, **{a: True for a in AGENTS}},
            len_lookback_buffer=0, agent_module_ids={a: a for a in AGENTS},
            observation_space=obs_space, action_space=act_space))
    return episodes, game


def state_baseline(theta, game):
    """A state-only critic: the exact value-to-go averaged over rounds."""
    values = GameValues(game, POLICY)
    th = torch.tensor(np.asarray(theta)[None], dtype=torch.float64)
    r, p = values.stage_rewards(th)[0], values.transition(th)[0]
    v, total = torch.zeros(S, 2, dtype=torch.float64), torch.zeros(S, 2, dtype=torch.float64)
    for _ in range(game.horizon):
        v = r + p @ v
        total += v
    return (total / game.horizon).float()


@pytest.mark.slow
def test_frozen_learner_matches_the_exact_engine_on_the_ipd(ray_local):
    # Four rounds: the estimator's variance grows with the horizon, and the
    # 12-round case is pinned by the two tests above (estimator vs oracle,
    # learner vs estimator).  ~36k episodes in ~30 s.
    theta, rounds, per_update, updates = THETAS["defecting"], 4, 1200, 30
    algo = frozen(theta, rounds, per_update * rounds).build_algo()
    gen = torch.Generator().manual_seed(0)
    try:
        learner = algo.learner_group._learner
        game = MemoryOneGame("ipd", IPD.stage, discount=1.0, horizon=rounds)
        base = state_baseline(theta, game)
        for k, a in enumerate(AGENTS):  # lr = 0 keeps the critic where it is put
            learner.module[a].values.data.copy_(base[:, k])
        est = np.zeros((2, 2, S))
        ref = np.zeros((2, 2, S))
        for _ in range(updates):
            episodes, game = ipd_episodes(theta, rounds, per_update, gen)
            update(learner, episodes)
            sigma = []
            for k, a in enumerate(AGENTS):
                b = learner.train_batch(a)
                raw = (b[Postprocessing.VALUE_TARGETS]
                       - b[Columns.OBS] @ learner.module[a].values.detach())
                sigma.append(float(raw.std() / b[Postprocessing.ADVANTAGES].std()))
            scaled = MemoryOneGame("ipd", game_from_spec(
                {"payoffs": (game.payoffs / np.asarray(sigma)[:, None, None]).tolist()}),
                discount=1.0, horizon=rounds)
            own, peer = exact(theta, ETA, game=scaled)
            ref += np.stack([own, peer]) / updates
            got = learner.last_corrections()
            for k, a in enumerate(AGENTS):
                est[0, k] += got[a].own[0].reshape(-1).numpy() / updates
                est[1, k] += got[a].peer[0].reshape(-1).numpy() / updates
        for t in range(2):
            for k in range(2):
                cos, err = match(est[t, k], ref[t, k], 0.0)
                assert cos >= 0.95 and err <= 0.10, (t, k, cos, err, est[t, k], ref[t, k])
    finally:
        algo.stop()
