"""What an RLlib user does that RLlib itself allows: their own callbacks, integer agent
ids, metrics after the handoff, and the PettingZoo conventions of our IPD."""

import math

import numpy as np
import pytest

from ray.rllib.callbacks.callbacks import RLlibCallback

from rllib_metamapg.metamapg.cooldown_callback import CooldownCallback
from rllib_metamapg.metamapg import metrics as M


class MarkResult(RLlibCallback):
    def on_train_result(self, *, result, **kwargs):
        result["user_callback"] = 1


class MyCooldown(CooldownCallback):
    pass


def test_callbacks_keep_the_cooldown_callback():
    from rllib_metamapg import MetaMAPGConfig

    assert MetaMAPGConfig().callbacks(MarkResult).callbacks_class == [CooldownCallback,
                                                                     MarkResult]
    assert MetaMAPGConfig().callbacks([MarkResult]).callbacks_class == [CooldownCallback,
                                                                       MarkResult]
    # A subclass of ours counts as ours; RLlib's "no callbacks" leaves ours alone.
    assert MetaMAPGConfig().callbacks(MyCooldown).callbacks_class is MyCooldown
    assert MetaMAPGConfig().callbacks(None).callbacks_class is CooldownCallback
    # update_from_dict (YAML files, Tune dicts) goes through callbacks() too.
    cfg = MetaMAPGConfig().update_from_dict({"callbacks": MarkResult})
    assert cfg.callbacks_class == [CooldownCallback, MarkResult]


def test_a_user_callback_and_ours_both_fire(ray_local):
    from rllib_metamapg import MetaMAPGConfig

    algo = (MetaMAPGConfig().environment("stag_hunt")
            .training(train_batch_size_per_learner=64, minibatch_size=32, num_epochs=1)
            .env_runners(num_env_runners=0).callbacks(MarkResult).debugging(seed=0)
            .build_algo())
    try:
        result = algo.train()
    finally:
        algo.stop()
    assert result["user_callback"] == 1
    assert result["metamapg"]["phase"] == "shaping"


def test_lambda_metric_reads_zero_after_the_handoff(ray_local):
    from rllib_metamapg import MetaMAPGConfig

    algo = (MetaMAPGConfig().environment("stag_hunt")
            .training(arm="handoff", handoff_steps=100, train_batch_size_per_learner=64,
                      minibatch_size=32, num_epochs=1)
            .env_runners(num_env_runners=0).debugging(seed=0).build_algo())
    try:
        results = [algo.train() for _ in range(3)]
    finally:
        algo.stop()
    first, last = results[0]["learners"]["player_0"], results[-1]["learners"]["player_0"]
    assert first[M.LAMBDA] == 1.0 and first[M.PEER_NORM] > 0
    assert results[-1]["metamapg"]["lambda"] == 0.0
    assert last[M.LAMBDA] == 0.0 and last[M.CORRECTION_NORM] == 0.0
    assert math.isnan(last[M.PEER_NORM])  # no estimate after the handoff: not measured


def test_integer_agent_ids_get_one_module_each(ray_local):
    from ray.rllib.examples.envs.classes.multi_agent import MultiAgentCartPole

    from rllib_metamapg import MetaMAPGConfig

    algo = (MetaMAPGConfig().environment(MultiAgentCartPole, env_config={"num_agents": 2})
            .training(train_batch_size_per_learner=100, minibatch_size=50, num_epochs=1)
            .env_runners(num_env_runners=0).debugging(seed=0).build_algo())
    try:
        result = algo.train()
    finally:
        algo.stop()
    assert {"0", "1"} <= set(result["learners"])
    assert result["learners"]["0"][M.PEER_NORM] > 0


def test_agent_ids_that_collide_as_strings_are_refused():
    from rllib_metamapg.envs.matrix_game import one_module_per_agent

    class Env:
        possible_agents = [1, "1"]

    with pytest.raises(ValueError, match="repeat"):
        one_module_per_agent(Env())


# ------------------------------------------------------------------ the IPD envs
def test_both_ipd_envs_end_the_game_as_a_termination():
    # The game's length is one of its rules: the last round terminates it (no value
    # is bootstrapped past it), as the exact engine's finite-horizon value assumes.
    from rllib_metamapg.envs.rollout import make_plugin_env

    for name in ("ipd", "pettingzoo_ipd"):
        env = make_plugin_env(name, {"rounds": 3})
        env.reset(seed=0)
        for t in range(3):
            _, _, term, trunc, _ = env.step({"player_0": 0, "player_1": 1})
        assert term["__all__"] is True and not trunc["__all__"], (name, term, trunc)


def test_pettingzoo_ipd_follows_the_pettingzoo_conventions():
    from pettingzoo.test import api_test, parallel_api_test

    from rllib_metamapg.envs import pettingzoo_ipd

    parallel_api_test(pettingzoo_ipd.parallel_env(rounds=5), num_cycles=20)
    api_test(pettingzoo_ipd.env(rounds=5), num_cycles=20)
    env = pettingzoo_ipd.parallel_env()
    assert env.render_mode is None
    with pytest.raises(ValueError, match="render_mode"):
        pettingzoo_ipd.parallel_env(render_mode="human")
    # Each player's space is its own: seeding one does not reseed the other.
    a, b = env.action_space("player_0"), env.action_space("player_1")
    assert a is not b
    b.seed(7)
    first = [b.sample() for _ in range(20)]
    b.seed(7)
    a.seed(0)
    assert [b.sample() for _ in range(20)] == first
    # Stepping after the last round returns empty dicts, as PettingZoo's wrappers do.
    env.reset(seed=0)
    for _ in range(env.rounds):
        env.step({"player_0": 1, "player_1": 1})
    assert env.agents == []
    assert env.step({}) == ({}, {}, {}, {}, {})


def test_pettingzoo_ipd_seeded_resets_repeat():
    from rllib_metamapg.envs import pettingzoo_ipd

    def draws(seed):
        env = pettingzoo_ipd.parallel_env()
        env.reset(seed=seed)
        return [env.action_space(a).sample() for a in env.possible_agents for _ in range(10)]

    assert draws(3) == draws(3)
    assert np.any(np.asarray(draws(3)) != np.asarray(draws(4)))
