"""Every sweepable environment trains one RLlib iteration with every arm; env contracts."""

from pathlib import Path

import numpy as np
import pytest

from rllib_metamapg import rllib_cli
from rllib_metamapg.registry import arm_names, get_arm
from rllib_metamapg.env_specs import ENV_SPECS
from rllib_metamapg.envs.rollout import random_policy_return, random_policy_score
from env_support import skip_unless_installed

ROOT = Path(__file__).resolve().parents[1]


# Envs whose settings live in a study folder (the comparison's one-shot games) train in
# the study's CI-sized sweep (tests/test_compare_rllib.py).
TUNED = sorted(e for e, s in ENV_SPECS.items() if s.tuned_examples)


@pytest.mark.parametrize("arm", arm_names(engine="rllib"))
@pytest.mark.parametrize("env", TUNED)
def test_one_iteration_with_every_arm(ray_local, env, arm):
    skip_unless_installed(env)
    path = ROOT / "tuned_examples" / env / f"{arm}-smoke.yaml"
    ((_, config, _),) = rllib_cli.prepare(rllib_cli.load_experiments(str(path)), {}, str(path))
    config = config.evaluation(evaluation_interval=None)
    algo = config.build_algo()
    try:
        result = algo.train()
    finally:
        algo.stop()
    assert result["num_env_steps_sampled_lifetime"] >= config.train_batch_size_per_learner
    learners = result["learners"]
    for module in config.policies:
        assert np.isfinite(learners[module]["total_loss"])
        # What the arm declares its learner reports: its own mechanism ran.
        for metric in get_arm(arm).reports:
            assert learners[module][metric] > 0, (module, metric)


def test_pettingzoo_ipd_passes_the_parallel_api_test_and_pays_the_engine_payoffs():
    from pettingzoo.test import parallel_api_test

    from rllib_metamapg.envs.pettingzoo_ipd import IteratedPrisonersDilemma

    parallel_api_test(IteratedPrisonersDilemma(), num_cycles=50)
    env = IteratedPrisonersDilemma(rounds=2)
    obs, _ = env.reset(seed=0)
    assert obs["player_0"].argmax() == 0
    obs, rew, term, trunc, _ = env.step({"player_0": 0, "player_1": 1})  # C vs D
    assert (rew["player_0"], rew["player_1"]) == (0.0, 5.0)
    assert obs["player_1"].argmax() == 2 and not any(term.values())
    _, rew, term, trunc, _ = env.step({"player_0": 0, "player_1": 0})
    # The last round terminates the game (its length is a rule), as in ``ipd``.
    assert rew == {"player_0": 3.0, "player_1": 3.0}
    assert all(term.values()) and not any(trunc.values())


def test_rllib_wrapper_keeps_the_pettingzoo_agent_order():
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

    from rllib_metamapg.envs.pettingzoo_ipd import (IteratedPrisonersDilemma,
                                                    OrderedParallelPettingZooEnv)

    class Reversed(IteratedPrisonersDilemma):
        def __init__(self):
            super().__init__()
            self.possible_agents = ["player_1", "player_0"]

    # RLlib's own wrapper lists agents in set order, which varies with PYTHONHASHSEED.
    ordered = OrderedParallelPettingZooEnv(Reversed())
    assert isinstance(ordered, ParallelPettingZooEnv)
    assert ordered.possible_agents == ordered.agents == ["player_1", "player_0"]


@pytest.mark.parametrize("env, expected", [("stag_hunt", 4.5), ("ipd", 54.0),
                                           ("pettingzoo_ipd", 54.0)])
def test_random_policy_return_matches_the_payoff_average(env, expected):
    # Uniform play: the mean of the joint payoffs (times 12 rounds for the IPDs).
    assert random_policy_return(env, episodes=400) == pytest.approx(expected, rel=0.05)


@pytest.mark.parametrize("env", sorted(ENV_SPECS))
def test_tau_separates_learners_from_random_play(env):
    skip_unless_installed(env)
    spec = ENV_SPECS[env]
    if spec.tau is None:
        pytest.skip(f"{env}: {spec.note}")
    episodes = 20 if env.startswith("overcooked") else 200  # 400-step episodes
    random_score = random_policy_score(env, spec.score, episodes=episodes)
    assert random_score is not None and random_score < spec.tau
