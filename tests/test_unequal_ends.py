"""Corrections when agents end at different times.

* On a prisoner's dilemma where either player may quit (``quit_game``), the
  trajectory estimator on every agent's rows laid on one joint clock matches the
  exact corrections from enumerating every history (cos >= 0.95, relative
  error <= 10 %), and the estimate from agent i's rows alone -- what the peer
  columns give -- misses the peer term: the peer's steps after i quit carry
  d/dtheta_i through i's earlier actions.
* Through RLlib: on RLlib's own ``MultiAgentCartPole`` (poles fall at different
  times), the learner's corrections are exactly ``compute_corrections_for`` on
  the joint rows the test lays out from the episodes, and ``meta_mapg``,
  ``peer_only`` and ``matrl`` train.
"""

import numpy as np
import pytest
import torch

from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

import gymnasium as gym
from ipd_samples import match
from quit_game import A, S, QuitSampler, exact_corrections
from rllib_metamapg.metamapg.torch.corrections import (
    AgentSlice, EpisodeLayout, compute_corrections_for)
from rllib_metamapg.rllib_base.torch.module_params import policy_params, trainable_params
from rllib_metamapg.metamapg.torch.joint_rows import joint_slices
from rllib_metamapg.models import TabularPPOTorchRLModule

ETA = 1.0
# Quitting is likely enough (p(Q) about 0.2 to 0.4) that most episodes end unequally.
THETA = np.random.default_rng(3).normal(0.0, 0.6, (2, S, A))


def tabular_modules(theta):
    space = gym.spaces.Box(0.0, 1.0, (S,), np.float32)
    return [TabularPPOTorchRLModule(observation_space=space, action_space=gym.spaces.Discrete(A),
                                    model_config={"init_logit": theta[k].ravel().tolist()})
            for k in range(2)]


def estimate(batches, mods, joint):
    """Per player ``(own, peer)`` ``(S, A)`` arrays: on the joint rows, or on each
    player's own rows with the peer aligned where it acted (``joint=False``)."""
    out = []
    for i in range(2):
        order = [i, 1 - i]
        if joint:
            agents, valid, layout = joint_slices(
                {k: batches[k] for k in order}, order,
                lambda k: (mods[k], trainable_params(mods[k])))
        else:
            agents, valid, layout = own_rows(batches, mods, i)
        (c,) = compute_corrections_for(agents, valid, for_agents=[0], inner_lr=ETA,
                                       layout=layout)
        out.append((c.own[0].numpy(), c.peer[0].numpy()))
    return out


def own_rows(batches, mods, i):
    """Player i's rows; the peer's columns at the same (episode, step), absent elsewhere."""
    mine, peer = batches[i], batches[1 - i]
    key = lambda b: b["metamapg_episode"] * 100 + b["metamapg_t"]  # noqa: E731
    where = {int(k): r for r, k in enumerate(key(peer))}
    idx = torch.tensor([where.get(int(k), -1) for k in key(mine)])
    present, src = idx >= 0, idx.clamp(min=0)
    agents = [AgentSlice(mods[i], trainable_params(mods[i]), {Columns.OBS: mine[Columns.OBS]},
                         mine[Columns.ACTIONS], mine[Columns.ACTION_LOGP],
                         mine[Postprocessing.ADVANTAGES])]
    agents.append(AgentSlice(mods[1 - i], trainable_params(mods[1 - i]),
                             {Columns.OBS: peer[Columns.OBS][src]}, peer[Columns.ACTIONS][src],
                             peer[Columns.ACTION_LOGP][src],
                             peer[Postprocessing.ADVANTAGES][src], present))
    valid = torch.ones(len(idx), dtype=torch.bool)
    return agents, valid, EpisodeLayout(mine["metamapg_episode"], mine["metamapg_t"], valid)


def test_quit_game_has_unequal_ends():
    batch = QuitSampler(THETA, seed=1).batch(2000)
    lengths = [np.bincount(batch[k]["metamapg_episode"].numpy(), minlength=2000)
               for k in range(2)]
    unequal = float(np.mean(lengths[0] != lengths[1]))
    assert 0.3 < unequal < 0.9, unequal


@pytest.mark.slow
def test_joint_rows_match_the_exact_corrections_when_a_player_quits():
    # 10 batches of 4000 episodes (split: 2000 per stage), averaged; ~15 s.  Measured:
    # joint rows within 4 % of exact on every term; own rows 19 % off on player 0's peer term.
    own_x, peer_x = exact_corrections(THETA, ETA)
    mods = tabular_modules(THETA)
    sampler = QuitSampler(THETA, seed=0)
    batches = [sampler.batch(4000) for _ in range(10)]
    got = {joint: np.mean([np.stack([np.stack(t) for t in estimate(b, mods, joint)])
                           for b in batches], axis=0) for joint in (True, False)}
    for i in range(2):
        for t, ref in ((0, own_x[i]), (1, peer_x[i])):
            cos, err = match(got[True][i, t].ravel(), ref.ravel(), 0.0)
            assert cos >= 0.95 and err <= 0.10, (i, t, cos, err)
    # Own rows alone: the peer term is off (the check above would fail without the
    # joint rows).
    worst = max(match(got[False][i, 1].ravel(), peer_x[i].ravel(), 0.0)[1] for i in range(2))
    assert worst > 0.15, worst


# ------------------------------------------------------------- through RLlib
def cartpole_config(arm, method="metamapg"):
    from ray.rllib.examples.envs.classes.multi_agent import MultiAgentCartPole

    from rllib_metamapg import MATRLConfig, MetaMAPGConfig
    cls = MATRLConfig if method == "matrl" else MetaMAPGConfig
    return (cls().environment(MultiAgentCartPole, env_config={"num_agents": 2})
            .multi_agent(policies={"p0", "p1"},
                         policy_mapping_fn=lambda agent, *args, **kwargs: f"p{agent}")
            .training(arm=arm, train_batch_size_per_learner=200, minibatch_size=100,
                      num_epochs=1)
            .env_runners(num_env_runners=0, num_envs_per_env_runner=2)
            .debugging(seed=0))


def laid_out(episodes, agent):
    """Episode number and step of each of ``agent``'s rows, from the episodes: on
    CartPole an agent acts at every env step from its chunk's start until its pole
    falls, and PPO's connector appends one masked step per chunk."""
    ep, t = [], []
    for number, e in enumerate(episodes):
        if agent in e.agent_episodes:
            n = len(e.agent_episodes[agent]) + 1
            ep += [number] * n
            t += list(range(n))
    return torch.tensor(ep), torch.tensor(t)


def test_learner_corrections_on_cartpole_use_every_agents_steps(ray_local):
    # lr 0: the modules after the update are the ones the estimate was taken at.
    algo = cartpole_config("meta_mapg").training(correction_clip=None, lr=0.0).build_algo()
    try:
        learner = algo.learner_group._learner
        episodes = algo.env_runner.sample(num_timesteps=200, random_actions=False)
        lengths = [(len(e.agent_episodes[0]) if 0 in e.agent_episodes else 0,
                    len(e.agent_episodes[1]) if 1 in e.agent_episodes else 0)
                   for e in episodes]
        assert any(a != b for a, b in lengths), lengths
        layout = {a: laid_out(episodes, a) for a in (0, 1)}
        steps = sum(e.env_steps() for e in episodes)
        learner.update(episodes=episodes, timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: steps},
                       num_epochs=1, minibatch_size=100)
        got = learner.last_corrections()
        mods = {m: learner.module[m].unwrapped() for m in ("p0", "p1")}
        for i, mid in enumerate(("p0", "p1")):
            order = [mid, "p1" if mid == "p0" else "p0"]
            batches = {}
            for m in order:
                b = dict(learner.train_batch(m))
                b["metamapg_episode"], b["metamapg_t"] = layout[int(m[1])]
                batches[m] = b
            agents, valid, lay = joint_slices(batches, order, lambda m: (
                mods[m], {n: p.detach().requires_grad_(True)
                          for n, p in policy_params(mods[m]).items()}))
            cfg = learner.config.get_config_for_module(mid)
            (want,) = compute_corrections_for(
                agents, valid, for_agents=[0], inner_lr=cfg.inner_lr,
                unroll_length=cfg.unroll_length, form=cfg.correction_form,
                estimator=cfg.correction_estimator, split=cfg.correction_split, layout=lay)
            for x, y in zip(got[mid].own + got[mid].peer + got[mid].pg,
                            want.own + want.peer + want.pg):
                torch.testing.assert_close(x, y)
            assert float(torch.cat([p.reshape(-1) for p in got[mid].peer]).norm()) > 0
    finally:
        algo.stop()


@pytest.mark.parametrize("arm,method", [("meta_mapg", "metamapg"), ("peer_only", "metamapg"),
                                        ("matrl", "matrl")])
def test_methods_train_on_multi_agent_cartpole(ray_local, arm, method):
    algo = cartpole_config(arm, method).build_algo()
    try:
        for _ in range(2):
            result = algo.train()
        learners = result["learners"]
        for mid in ("p0", "p1"):
            ours = {k: v for k, v in learners[mid].items()
                    if k.startswith(("metamapg_", "matrl_")) or k.endswith("_loss")}
            assert ours and all(np.isfinite(v) for v in ours.values()), ours
        if method == "metamapg":
            assert learners["p0"]["metamapg_peer_norm"] > 0
    finally:
        algo.stop()
