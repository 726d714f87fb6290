"""Matrix-game MultiAgentEnvs: payoffs and states as in the tabular engine, and RLlib use."""

import itertools

import numpy as np
import pytest
import torch

from rllib_metamapg.envs import MATRIX_GAMES, MatrixGameEnv, one_module_per_agent
from rllib_metamapg.tabular.games import get_game


@pytest.mark.parametrize("name", MATRIX_GAMES)
def test_rewards_and_states_match_the_tabular_game(name):
    env = MatrixGameEnv({"game": name, "rounds": 3})
    game = get_game(name)
    obs, _ = env.reset(seed=0)
    assert all(o.argmax() == 0 for o in obs.values())  # start state
    for joint in itertools.product(*[range(a) for a in game.num_actions]):
        env.reset()
        obs, rew, term, trunc, _ = env.step(dict(zip(env.agents, joint)))
        for i, agent in enumerate(env.agents):
            assert rew[agent] == pytest.approx(game.payoffs[(i,) + joint])
            assert obs[agent].argmax() == 1 + np.ravel_multi_index(joint, game.num_actions)
        assert not term["__all__"]


def test_episode_length_and_ipd_default_horizon():
    env = MatrixGameEnv({"game": "ipd"})
    assert env.rounds == 12
    env.reset()
    for k in range(12):
        _, _, term, _, _ = env.step({a: 0 for a in env.agents})
    assert term["__all__"]
    assert MatrixGameEnv({"game": "stag_hunt"}).rounds == 1


def test_custom_payoffs_and_three_players():
    env = MatrixGameEnv({"game": {"payoffs": np.arange(24).reshape(3, 2, 2, 2).tolist()}})
    assert env.agents == ["player_0", "player_1", "player_2"]
    env.reset()
    _, rew, _, _, _ = env.step({"player_0": 1, "player_1": 0, "player_2": 1})
    assert rew == {"player_0": 5.0, "player_1": 13.0, "player_2": 21.0}


@pytest.mark.parametrize("config, match", [
    ({"rounds": 0}, "rounds=0"), ({"bogus": 1}, "unknown key"), ({"game": "nope"}, "nope")])
def test_bad_env_config(config, match):
    with pytest.raises(ValueError, match=match):
        MatrixGameEnv(config)


def test_missing_action_is_refused():
    env = MatrixGameEnv({})
    env.reset()
    with pytest.raises(ValueError, match="player_1"):
        env.step({"player_0": 0})


def test_registered_env_trains_under_rllib_ppo(ray_local):
    from ray.rllib.algorithms.ppo import PPOConfig

    env = MatrixGameEnv({"game": "stag_hunt"})
    config = (PPOConfig().environment("stag_hunt", env_config={"rounds": 4})
              .env_runners(num_env_runners=0, num_envs_per_env_runner=2,
                           rollout_fragment_length=16, episodes_to_numpy=False)
              .multi_agent(**one_module_per_agent(env))
              .training(train_batch_size_per_learner=64, minibatch_size=32, num_epochs=1)
              .debugging(seed=0))
    algo = config.build_algo()
    try:
        before = {m: algo.get_module(m).state_dict() for m in ("player_0", "player_1")}
        before = {m: {k: v.clone() for k, v in sd.items()} for m, sd in before.items()}
        result = algo.train()
        assert {"player_0", "player_1"} <= set(result["learners"])
        runners = result["env_runners"]
        # Episodes last the configured 4 rounds, and the episode return is the two
        # players' returns summed (an env that dropped a reward or a player fails).
        assert runners["episode_len_mean"] == 4
        assert runners["episode_return_mean"] == pytest.approx(
            sum(runners["agent_episode_returns_mean"].values()))
        for m, sd in before.items():  # PPO updated both modules
            after = algo.get_module(m).state_dict()
            assert any(not torch.equal(v, after[k]) for k, v in sd.items()), m
    finally:
        algo.stop()


@pytest.mark.parametrize("name", ["chicken", "penalty", "ipd"])
def test_infos_say_which_rounds_played_a_target_and_the_episode_rate(name):
    # Chicken's target (both swerve) and a one-sided swerve both sum to 0, so only
    # the info tells them apart; Penalty has two targets; the IPD's is mutual C.
    game = get_game(name)
    env = MatrixGameEnv({"game": name, "rounds": 4})
    joints = list(itertools.product(*[range(a) for a in game.num_actions]))
    plays = [joints[k % len(joints)] for k in range(4)]
    env.reset()
    for k, joint in enumerate(plays):
        _, _, term, _, infos = env.step(dict(zip(env.agents, joint)))
        for info in infos.values():
            assert info["on_target"] == (joint in game.targets)
            assert ("on_target_rate" in info) == (k == 3)
    expected = sum(j in game.targets for j in plays) / 4
    assert all(i["on_target_rate"] == expected for i in infos.values())
    assert 0 < expected < 1


def test_random_play_scores_the_share_of_target_cells():
    from rllib_metamapg.envs.rollout import random_policy_score

    # Chicken: one target cell of 4; Penalty: 2 of 9.
    assert random_policy_score("chicken", "on_target", episodes=2000) == pytest.approx(
        0.25, abs=0.03)
    assert random_policy_score("penalty", "on_target", episodes=2000) == pytest.approx(
        2 / 9, abs=0.03)
    assert random_policy_score("stag_hunt", "return", episodes=400) == pytest.approx(
        4.5, rel=0.05)
