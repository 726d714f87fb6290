"""Whole episodes for the trajectory estimator: each env's episode length, the check
that names cut chunks, RLlib's sampling at a fragment that is a multiple of the
length, and the tuned examples and studies kept out of the cut regime."""

import logging
from pathlib import Path

import pytest

from rllib_metamapg import MetaMAPGConfig
from rllib_metamapg import registry
from rllib_metamapg.env_specs import ENV_SPECS
from rllib_metamapg.envs.rollout import make_env
from rllib_metamapg.envs import CREATORS, EPISODE_LENGTHS, fixed_episode_length
from rllib_metamapg.episode_chunks import cut_episodes_problem, fragment_lengths
from rllib_metamapg.metamapg import metamapg as metamapg_module
from rllib_metamapg.rllib_experiments import build_config
from rllib_metamapg.tuned_examples import envs_with_base, experiment

ROOT = Path(__file__).resolve().parents[1]


def ipd(batch, envs=32, runners=0, fragment="auto", arm="meta_mapg", **training):
    return (MetaMAPGConfig().environment("ipd")
            .training(arm=arm, train_batch_size_per_learner=batch, minibatch_size=batch,
                      **training)
            .env_runners(num_env_runners=runners, num_envs_per_env_runner=envs,
                         rollout_fragment_length=fragment))


def test_every_registered_env_says_whether_its_episodes_have_one_length():
    assert set(EPISODE_LENGTHS) == set(CREATORS)
    assert fixed_episode_length("ipd") == 12
    assert fixed_episode_length("ipd", {"rounds": 5}) == 5
    assert fixed_episode_length("stag_hunt") == 1
    assert fixed_episode_length("matrix_game", {"game": "ipd"}) == 12
    assert fixed_episode_length("overcooked_forced_coordination", {"horizon": 100}) == 100
    assert fixed_episode_length("meltingpot_pd_in_the_matrix") is None
    assert fixed_episode_length("an_env_of_the_users") is None
    assert fixed_episode_length(object) is None


@pytest.mark.parametrize("name", [n for n in sorted(CREATORS) if n != "matrix_game"])
def test_the_declared_length_is_what_the_env_plays(name):
    length = fixed_episode_length(name)
    if length is None:
        pytest.skip(f"{name}: episodes of different lengths")
    spec = ENV_SPECS.get(name)
    if spec is not None and spec.missing():
        pytest.skip(spec.missing())
    env = make_env(name)
    for episode in range(2):
        env.reset(seed=episode)
        steps, done = 0, False
        while not done:
            actions = {a: env.get_action_space(a).sample() for a in env.agents}
            _, _, term, trunc, _ = env.step(actions)
            steps += 1
            done = term.get("__all__", False) or trunc.get("__all__", False)
        assert steps == length, (name, steps, length)


def test_the_check_names_the_cut_and_the_fix():
    problem = cut_episodes_problem(ipd(256))  # 32 envs x 8 steps: App. E.1's rollout
    assert "rollout_fragment_length='auto' gives 8 steps" in problem
    assert "12-step episodes of env 'ipd'" in problem
    assert "(e.g. 12 and 384)" in problem
    assert cut_episodes_problem(ipd(384)) is None              # 32 x 12
    assert cut_episodes_problem(ipd(252, envs=21)) is None     # the studies' choice
    assert cut_episodes_problem(ipd(768, fragment=24)) is None
    assert cut_episodes_problem(ipd(768, fragment=18)) is not None
    assert cut_episodes_problem(ipd(256).env_runners(batch_mode="complete_episodes")) is None
    # Several env runners: RLlib hands the remainder of an uneven split to the
    # first ones, so one runner can cut while another does not.
    assert fragment_lengths(ipd(8 * 12 + 4, envs=4, runners=2)) == [12, 13]
    assert cut_episodes_problem(ipd(8 * 12 + 4, envs=4, runners=2)) is not None
    assert cut_episodes_problem(ipd(8 * 12, envs=4, runners=2)) is None
    one_shot = MetaMAPGConfig().environment("stag_hunt").training(arm="meta_mapg")
    assert cut_episodes_problem(one_shot) is None


def test_a_yaml_may_set_rollout_fragment_length_to_a_number():
    # RLlib's default is the string "auto"; the file checks once refused a number.
    config = build_config("ipd", {"rollout_fragment_length": 12, "num_env_runners": 0,
                                  "num_envs_per_env_runner": 2,
                                  "train_batch_size_per_learner": 24, "minibatch_size": 24},
                          "exp")
    assert config.rollout_fragment_length == 12


def test_validate_warns_only_where_the_trajectory_estimator_corrects(caplog, monkeypatch):
    monkeypatch.setattr(metamapg_module, "_WARNED", set())

    def warned(config):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=metamapg_module.__name__):
            config.validate()
        return [r.getMessage() for r in caplog.records if "cuts the 12-step" in r.getMessage()]

    assert len(warned(ipd(256))) == 1
    assert warned(ipd(256)) == []                      # once per process, not per copy
    monkeypatch.setattr(metamapg_module, "_WARNED", set())
    assert warned(ipd(256, arm="ippo")) == []          # no corrections
    assert warned(ipd(256, correction_estimator="per_step")) == []  # per-step rows only
    assert warned(ipd(384)) == []


def test_rllib_samples_whole_episodes_at_a_fragment_that_is_a_multiple(ray_local):
    # 3 vector envs x 24 steps: every sample is two whole 12-round episodes per env,
    # also after the first (the autoreset step between episodes keeps envs in step).
    algo = ipd(72, envs=3, fragment=24).debugging(seed=0).build_algo()
    try:
        for _ in range(3):
            episodes = algo.env_runner.sample()
            assert len(episodes) == 6
            for e in episodes:
                assert e.env_t_started == 0 and e.env_steps() == 12 and e.is_done
    finally:
        algo.stop()


@pytest.mark.parametrize("folder, env", [
    *[("tuned_examples", e) for e in envs_with_base(ROOT / "tuned_examples")],
    # Every study folder with env settings of its own (the others take these by `bases`).
    *[(f"studies/{d.name}", e) for d in sorted((ROOT / "studies").iterdir())
      for e in envs_with_base(d)]])
def test_tuned_examples_and_studies_give_the_trajectory_estimator_whole_episodes(folder, env):
    length = fixed_episode_length(env)
    if length is None or length == 1:
        pytest.skip(f"{env}: one-shot, or episodes of different lengths")
    if env.startswith(("mpe_", "overcooked_")):
        # App. E.1's rollout of 256 is kept for the App. F envs (25- and 400-step
        # episodes): docs/rllib.md says what it costs; the check warns there.
        pytest.skip(f"{env}: keeps App. E.1's rollout, documented")
    for smoke in (False, True):
        for arm in registry.arm_names(engine="rllib"):
            name, exp = experiment(env, arm, smoke, ROOT / folder)
            config = build_config(exp["env"], exp["config"], name, exp["run"])
            # Every arm: the sampling settings are shared, so pairing keeps them equal.
            assert cut_episodes_problem(config) is None, (folder, name)
