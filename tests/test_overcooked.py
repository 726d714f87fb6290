"""Overcooked forced_coordination behaves as overcooked-ai's: layout, rewards, features."""

import numpy as np
import pytest

pytest.importorskip("overcooked", reason="the `overcooked` package is not installed "
                    "(`make overcooked`, see README 'Overcooked')")

from rllib_metamapg.envs.overcooked import OvercookedEnv  # noqa: E402

# overcooked-ai 1.1.0's overcooked_ai_py/data/layouts/forced_coordination.layout.
# "1" and "2" mark the start tiles of player 0 and 1.
UPSTREAM_GRID = ["XXXPX",
                 "O X1P",
                 "O2X X",
                 "D X X",
                 "XXXSX"]
N, S, E, W, STAY, INTERACT = range(6)  # upstream Action.INDEX_TO_ACTION order


def test_the_layout_is_upstreams_forced_coordination():
    env = OvercookedEnv()
    terrain = ["".join(row) for row in env.mdp.terrain_mtx]
    assert terrain == [row.replace("1", " ").replace("2", " ") for row in UPSTREAM_GRID]
    starts = {c: (row.index(c), y) for y, row in enumerate(UPSTREAM_GRID)
              for c in "12" if c in row}
    assert env.mdp.start_player_positions == [starts["1"], starts["2"]]
    # The middle counter column separates the cooks: onions and dishes on the
    # left, pots and the serving window on the right.
    assert env.mdp.get_onion_dispenser_locations() == [(0, 1), (0, 2)]
    assert env.mdp.get_pot_locations() == [(3, 0), (4, 1)]
    assert env.mdp.get_serving_locations() == [(3, 4)]
    assert env.mdp.reward_shaping_params["PLACEMENT_IN_POT_REW"] == 3
    assert env.mdp.reward_shaping_params["DISH_PICKUP_REWARD"] == 3
    assert env.mdp.reward_shaping_params["SOUP_PICKUP_REWARD"] == 5


class Script:
    """Steps the env with one cook acting and the other staying; keeps every reward."""

    def __init__(self, env):
        self.env = env
        self.rewards = []
        self.infos = []
        self.obs, _ = env.reset(seed=0)

    def act(self, cook, *actions):
        for action in actions:
            joint = {"cook_0": STAY, "cook_1": STAY, cook: action}
            self.obs, rewards, _, _, infos = self.env.step(joint)
            self.rewards.append(rewards)
            self.infos.append(infos)
        return self.rewards[-1]

    def hand_over_onion(self):
        self.act("cook_1", W, INTERACT, E, INTERACT)  # onion from (0,2) onto counter (2,2)
        self.act("cook_0", S, W, INTERACT, N)  # take it from the counter, face pot (3,0)
        return self.act("cook_0", INTERACT)


def test_a_scripted_soup_delivery_pays_as_overcooked_ai_with_the_papers_split():
    env = OvercookedEnv({"shaped_reward_coef": 0.5})
    play = Script(env)
    for _ in range(3):
        # Onion into pot: +3 shaped for cook_0 only, weighted by 0.5.
        assert play.hand_over_onion() == {"cook_0": 1.5, "cook_1": 0.0}
    pot = env.state.get_object((3, 0))
    assert pot.ingredients == ["onion"] * 3 and not pot.is_cooking
    play.act("cook_0", INTERACT)  # start cooking (overcooked-ai >= 1.0 dynamics)
    assert env.state.get_object((3, 0)).is_cooking
    # A dish is useful while a soup cooks: +3 shaped for cook_1, the cook who took it.
    assert play.act("cook_1", S, W, INTERACT) == {"cook_0": 0.0, "cook_1": 1.5}
    play.act("cook_1", E, INTERACT)  # dish onto counter (2,3)
    play.act("cook_0", S, S, W, INTERACT, N, N)  # fetch it, back to face the pot
    while not env.state.get_object((3, 0)).is_ready:
        play.act("cook_0", STAY)
    assert play.act("cook_0", INTERACT) == {"cook_0": 2.5, "cook_1": 0.0}  # soup pickup +5
    assert env.state.players[0].held_object.name == "soup"
    delivered = play.act("cook_0", S, S, S, INTERACT)
    # The delivery's 20 goes half to each cook, whoever carried it.
    assert delivered == {"cook_0": 10.0, "cook_1": 10.0}
    assert play.infos[-1]["cook_0"]["sparse_reward"] == 20.0
    assert play.infos[-1]["cook_1"]["sparse_reward"] == 0.0
    total = {a: sum(r[a] for r in play.rewards) for a in env.agents}
    assert total == {"cook_0": 10.0 + 0.5 * (3 * 3 + 5), "cook_1": 10.0 + 0.5 * 3}


@pytest.mark.parametrize("coef", [0.0, 1.0])
def test_the_shaped_coefficient_weights_only_the_shaped_channel(coef):
    play = Script(OvercookedEnv({"shaped_reward_coef": coef}))
    assert play.hand_over_onion() == {"cook_0": 3.0 * coef, "cook_1": 0.0}
    assert play.infos[-1]["cook_0"]["shaped_reward"] == 3.0


def test_the_episode_is_truncated_at_the_horizon():
    env = OvercookedEnv({"horizon": 3})
    env.reset(seed=0)
    flags = [env.step({"cook_0": STAY, "cook_1": STAY})[2:4] for _ in range(3)]
    assert [trunc["__all__"] for _, trunc in flags] == [False, False, True]
    assert not any(term["__all__"] for term, _ in flags)


def test_features_are_overcooked_ais_96_with_unreachable_items_zeroed():
    env = OvercookedEnv()
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"cook_0", "cook_1"}
    assert obs["cook_0"].shape == (96,) and obs["cook_0"].dtype == np.float32
    mine = obs["cook_0"][:46]
    # Facing north, holding nothing.
    np.testing.assert_array_equal(mine[:8], [1, 0, 0, 0, 0, 0, 0, 0])
    # Onions and dishes are behind the counter: unreachable, so (0, 0) as upstream.
    np.testing.assert_array_equal(mine[8:10], [0, 0])
    np.testing.assert_array_equal(mine[12:14], [0, 0])
    np.testing.assert_array_equal(mine[18:20], [0, 3])  # serving window 3 tiles south
    # Closest pot (3, 0) then (4, 1): exists, empty, its (dx, dy).
    np.testing.assert_array_equal(mine[[22, 23, 30, 31]], [1, 1, 0, -1])
    np.testing.assert_array_equal(mine[[32, 33, 40, 41]], [1, 1, 1, 0])
    np.testing.assert_array_equal(mine[42:46], [1, 0, 1, 1])  # walls N, S, E, W
    # Symmetric encoding: cook_1 sees cook_0's features second, then positions.
    np.testing.assert_array_equal(obs["cook_1"][46:92], mine)
    np.testing.assert_array_equal(obs["cook_0"][92:], [-2, 1, 3, 1])
    # cook_1 reaches the onion dispenser beside it (dx -1).
    np.testing.assert_array_equal(obs["cook_1"][8:10], [-1, 0])


def test_counters_visible_shows_an_onion_on_the_counter_to_the_other_cook():
    for visible, expected in ((False, [0, 0]), (True, [-1, 1])):
        env = OvercookedEnv({"counters_visible": visible})
        play = Script(env)
        play.act("cook_1", W, INTERACT, E, INTERACT)  # onion now on counter (2, 2)
        np.testing.assert_array_equal(play.obs["cook_0"][8:10], expected)


@pytest.mark.parametrize("config, field", [
    ({"horizon": 0}, "horizon"), ({"shaped_reward_coef": float("nan")}, "shaped_reward_coef"),
    ({"layout": "no_such_kitchen"}, "layout"), ({"counters_visible": 1}, "counters_visible"),
    ({"horizn": 400}, "horizn")])
def test_bad_config_names_the_field(config, field):
    with pytest.raises(ValueError, match=field):
        OvercookedEnv(config)
