import json

import numpy as np
import pytest

from rllib_metamapg.tabular.games import (GameError, MemoryOneGame, NormalFormGame, get_game,
                                          list_games, load_payoffs)


def test_stag_hunt_is_symmetric_with_reference_payoffs():
    g = get_game("stag_hunt")
    np.testing.assert_array_equal(g.payoffs[0], [[4, 0], [3, 2]])
    np.testing.assert_array_equal(g.payoffs[1], np.array([[4, 0], [3, 2]]).T)


def test_ipd_reference_settings():
    g = get_game("ipd")
    assert isinstance(g, MemoryOneGame)
    assert (g.horizon, g.discount, g.num_states) == (12, 0.96, 5)
    np.testing.assert_array_equal(g.payoffs[0], [[3, 0], [5, 1]])


def test_no_conflict_games_have_optimal_common_outcome():
    names = [f"no_conflict_{k}" for k in range(1, 22)]
    assert set(names) <= set(list_games())
    seen = set()
    for n in names:
        p = get_game(n).payoffs
        # (A, A) is optimal for both players in every no-conflict game.
        assert p[0, 0, 0] == p[0].max() and p[1, 0, 0] == p[1].max(), n
        seen.add(p.tobytes())
    assert len(seen) == 21


def test_climbing_and_penalty():
    assert get_game("climbing").payoffs[0, 0, 0] == 11
    assert get_game("penalty").payoffs[0, 0, 0] == -7
    assert get_game("climbing").num_actions == (3, 3)


def test_unknown_game_lists_choices():
    with pytest.raises(GameError, match="game='nope'.*stag_hunt"):
        get_game("nope")


def test_load_payoffs_forms(tmp_path):
    f = tmp_path / "g.json"
    f.write_text(json.dumps({"row_payoff": [[4, 0], [3, 2]]}))
    assert np.array_equal(load_payoffs(f).payoffs, get_game("stag_hunt").payoffs)
    y = tmp_path / "g.yaml"
    y.write_text("pairs: [[[1, 2], [0, 0]], [[0, 0], [2, 1]]]\ndiscount: 0.9\nhorizon: 3\n")
    g = load_payoffs(y)
    assert isinstance(g, MemoryOneGame) and g.horizon == 3
    assert g.payoffs[1, 0, 0] == 2
    three = tmp_path / "three.json"
    three.write_text(json.dumps({"payoffs": np.zeros((3, 2, 2, 2)).tolist()}))
    assert load_payoffs(three).num_players == 3


@pytest.mark.parametrize("spec, match", [
    ({"payoffs": [[1, 2], [3, 4]]}, "shape"),
    ({"payoffs": [[[1, float("nan")], [0, 0]], [[0, 0], [0, 0]]]}, "finite"),
    ({"payoffs": np.zeros((3, 2, 2)).tolist()}, "3 players need 4 dimensions"),
    ({"payoffs": np.zeros((1, 2)).tolist()}, "shape"),
    ({"row_payoff": [[1, 2, 3], [4, 5, 6]]}, "square"),
    ({"bogus": 1, "payoffs": []}, "unknown key"),
    ({"row_payoff": [[1, 2], [3, 4]], "pairs": []}, "exactly one"),
    ({"row_payoff": [[1, 2], [3, 4]], "discount": 1.0}, "infinite-horizon"),
])
def test_bad_payoffs_name_the_field(tmp_path, spec, match):
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(spec))
    with pytest.raises(GameError, match=match):
        load_payoffs(f)


def test_malformed_yaml(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("payoffs: [[1, 2]\n")
    with pytest.raises(GameError, match="not valid YAML"):
        load_payoffs(f)


def test_normal_form_needs_two_actions():
    with pytest.raises(GameError, match="at least 2 actions"):
        NormalFormGame("x", np.zeros((2, 1, 2)))
