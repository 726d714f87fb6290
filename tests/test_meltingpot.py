"""The Melting Pot adapter against a stand-in substrate with dm_env's interface;
the real substrate when dm-meltingpot is installed (`make meltingpot`)."""

from types import SimpleNamespace

import numpy as np
import pytest
from env_support import skip_unless_installed

from rllib_metamapg.envs.meltingpot import MeltingPotEnv, make_meltingpot


def spec(shape, dtype, num_values=None):
    """What the adapter reads of dm_env.specs.Array / DiscreteArray."""
    return SimpleNamespace(shape=shape, dtype=np.dtype(dtype), num_values=num_values)


class StandInSubstrate:
    """Two players; rewards echo the actions; the episode ends after ``length`` steps."""

    def __init__(self, length=3, final_discount=1.0):
        self.length, self.final_discount = length, final_discount
        self.actions, self.closed, self.t = [], False, 0

    def observation_spec(self):
        return [{"RGB": spec((4, 4, 3), np.uint8), "INVENTORY": spec((2,), np.float64),
                 "WORLD.RGB": spec((8, 8, 3), np.uint8)} for _ in range(2)]

    def action_spec(self):
        return [spec((), np.int64, num_values=8) for _ in range(2)]

    def _timestep(self, reward, last, discount):
        obs = [{"RGB": np.full((4, 4, 3), 51 * (i + 1), np.uint8),
                "INVENTORY": np.array([self.t, -i], np.float64),
                "WORLD.RGB": np.zeros((8, 8, 3), np.uint8)} for i in range(2)]
        return SimpleNamespace(observation=obs, reward=reward, discount=discount,
                               last=lambda: last)

    def reset(self):
        self.t = 0
        return self._timestep(None, False, None)

    def step(self, actions):
        self.actions.append(list(actions))
        self.t += 1
        last = self.t >= self.length
        return self._timestep([float(actions[0]), 2.0 * actions[1]], last,
                              self.final_discount if last else 1.0)

    def close(self):
        self.closed = True


def test_spaces_drop_world_views_and_flatten_each_players_own_observations():
    env = MeltingPotEnv(StandInSubstrate())
    assert env.possible_agents == ["player_0", "player_1"]
    space = env.observation_spaces["player_0"]
    assert space.shape == (2 + 48,)  # INVENTORY then RGB (key order); no WORLD.RGB
    assert np.all(np.isinf(space.low[:2])) and np.all(space.low[2:] == 0)
    assert np.all(space.high[2:] == 1)
    assert env.action_spaces["player_1"].n == 8


def test_observations_are_scaled_and_in_player_order():
    env = MeltingPotEnv(StandInSubstrate())
    obs, _ = env.reset(seed=0)
    np.testing.assert_allclose(obs["player_0"][2:], 0.2)  # 51 / 255
    np.testing.assert_allclose(obs["player_1"][2:], 0.4)
    np.testing.assert_array_equal(obs["player_1"][:2], [0, -1])
    assert all(env.observation_spaces[a].contains(o) for a, o in obs.items())


@pytest.mark.parametrize("discount, terminated", [(0.0, True), (1.0, False)])
def test_steps_map_actions_rewards_and_episode_ends(discount, terminated):
    substrate = StandInSubstrate(length=2, final_discount=discount)
    env = MeltingPotEnv(substrate)
    env.reset()
    _, rewards, term, trunc, _ = env.step({"player_1": 3, "player_0": 5})
    assert substrate.actions == [[5, 3]]
    assert rewards == {"player_0": 5.0, "player_1": 6.0}
    assert not term["__all__"] and not trunc["__all__"]
    obs, _, term, trunc, _ = env.step({"player_0": 0, "player_1": 0})
    # dm_env: discount 0 on the last step is a true end, 1 a time limit.
    assert (term["__all__"], trunc["__all__"]) == (terminated, not terminated)
    np.testing.assert_array_equal(obs["player_0"][:2], [2, 0])
    with pytest.raises(ValueError, match="missing"):
        env.step({"player_0": 0})
    env.close()
    assert substrate.closed


def test_unknown_config_key_is_named():
    with pytest.raises(ValueError, match="unknown key.*'role'"):
        make_meltingpot("meltingpot_pd_in_the_matrix", {"role": ["default"]})


def test_the_real_substrate_steps():
    skip_unless_installed("meltingpot_pd_in_the_matrix")
    env = make_meltingpot("meltingpot_pd_in_the_matrix")
    obs, _ = env.reset(seed=0)
    for _ in range(10):
        obs, rewards, _, _, _ = env.step({a: env.action_spaces[a].sample() for a in obs})
        assert set(rewards) == set(env.possible_agents)
        assert all(env.observation_spaces[a].contains(o) for a, o in obs.items())
    env.close()
