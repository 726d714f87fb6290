"""Level-Based Foraging through the wrapper: the package's own game, step for step."""

import numpy as np
import pytest

pytest.importorskip("lbforaging")

from rllib_metamapg.envs.lbforaging import LevelBasedForagingEnv  # noqa: E402


def test_the_wrapper_plays_the_packages_game_step_for_step():
    from lbforaging.foraging import ForagingEnv

    ours = LevelBasedForagingEnv({"field_size": 5, "players": 2, "max_num_food": 1})
    theirs = ForagingEnv(players=2, field_size=(5, 5), max_num_food=1, sight=5,
                         max_episode_steps=50, force_coop=True, penalty=0.0,
                         min_player_level=1, max_player_level=2, min_food_level=1,
                         max_food_level=None, grid_observation=False)
    rng = np.random.default_rng(0)
    for episode in range(3):
        obs, _ = ours.reset(seed=episode)
        ref, _ = theirs.reset(seed=episode)
        assert list(obs) == ["agent_0", "agent_1"]
        for a, o in zip(ours.agents, ref):
            assert np.array_equal(obs[a], o)
        done, total = False, 0.0
        while not done:
            acts = [int(x) for x in rng.integers(0, 6, size=2)]
            obs, rew, term, trunc, _ = ours.step(dict(zip(ours.agents, acts)))
            ref, ref_rew, ref_done, _, _ = theirs.step(tuple(acts))
            assert [rew[a] for a in ours.agents] == [float(r) for r in ref_rew]
            assert all(np.array_equal(obs[a], o) for a, o in zip(ours.agents, ref))
            done = term["__all__"]
            assert done == ref_done
            total += sum(rew.values())
        assert 0.0 <= total <= 1.0 + 1e-6  # normalised: 1 when every food is loaded


@pytest.mark.parametrize("config, field", [({"colour": 1}, "colour"),
                                           ({"penalty": 2.0}, "penalty"),
                                           ({"players": 1}, "players")])
def test_bad_settings_are_refused_by_name(config, field):
    with pytest.raises(ValueError, match=field):
        LevelBasedForagingEnv(config)
