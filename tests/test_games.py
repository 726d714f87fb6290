import json

import numpy as np
import pytest

from rllib_metamapg.tabular.games import (NO_CONFLICT_MODIFIED, GameError, MemoryOneGame,
                                          NormalFormGame, get_game, list_games, load_payoffs)


def test_stag_hunt_is_symmetric_with_reference_payoffs():
    g = get_game("stag_hunt")
    np.testing.assert_array_equal(g.payoffs[0], [[4, 0], [3, 2]])
    np.testing.assert_array_equal(g.payoffs[1], np.array([[4, 0], [3, 2]]).T)


def test_ipd_reference_settings():
    g = get_game("ipd")
    assert isinstance(g, MemoryOneGame)
    assert (g.horizon, g.discount, g.num_states) == (12, 0.96, 5)
    np.testing.assert_array_equal(g.payoffs[0], [[3, 0], [5, 1]])


NO_CONFLICT = [f"no_conflict_{k}" for k in range(1, 22)]


def unmodified(k):
    """Game k's payoffs before the MA-PROPS paper's (A, A) modification."""
    p = get_game(f"no_conflict_{k}").payoffs.copy()
    if k in NO_CONFLICT_MODIFIED:
        p[:, 0, 0] = NO_CONFLICT_MODIFIED[k]
    return p


def canonical(p):
    """The smallest payoff tuple over relabelling actions and swapping players."""
    forms = []
    for q in (p, np.stack([p[1].T, p[0].T])):          # swap players
        for rows in ((0, 1), (1, 0)):
            for cols in ((0, 1), (1, 0)):
                forms.append(tuple(q[:, rows][:, :, cols].ravel()))
    return min(forms)


def test_no_conflict_games_are_the_21_strict_ordinal_games():
    assert set(NO_CONFLICT) <= set(list_games())
    for k in range(1, 22):
        p = unmodified(k)
        for i in range(2):  # strictly ordinal: each player ranks the 4 outcomes 1..4
            assert sorted(p[i].ravel()) == [1, 2, 3, 4], (k, i, p[i])
        # no conflict: one joint action, (A, A), is the unique best for both.
        assert p[0, 0, 0] == 4 and p[1, 0, 0] == 4, k
    assert len({canonical(unmodified(k)) for k in range(1, 22)}) == 21
    # Every 2x2 strict ordinal game with a common best outcome is one of them.
    import itertools

    classes = set()
    for r1 in itertools.permutations([1, 2, 3]):
        for r2 in itertools.permutations([1, 2, 3]):
            p = np.array([[[4, r1[0]], [r1[1], r1[2]]], [[4, r2[0]], [r2[1], r2[2]]]], float)
            classes.add(canonical(p))
    assert classes == {canonical(unmodified(k)) for k in range(1, 22)}


def uniform_gradient(p):
    """d V_i / d p_i(A) for each player at uniform policies."""
    return np.array([0.5 * (p[0, 0].sum() - p[0, 1].sum()),
                     0.5 * (p[1][:, 0].sum() - p[1][:, 1].sum())])


def test_no_conflict_modification_points_the_uniform_gradient_at_a_a():
    for k in range(1, 22):
        after = uniform_gradient(get_game(f"no_conflict_{k}").payoffs)
        before = uniform_gradient(unmodified(k))
        if k in (16, 17):  # the paper leaves agent 2's zero gradient here (open point)
            assert after[0] > 0 and after[1] == 0, (k, after)
        else:
            assert (after > 0).all(), (k, after)
        # The modified games are exactly those where some gradient was not toward A.
        assert (k in NO_CONFLICT_MODIFIED) == ((before <= 0).any() and k not in (16, 17)), \
            (k, before)
        assert get_game(f"no_conflict_{k}").targets == ((0, 0),)


def test_targets_are_a_property_of_each_game():
    assert get_game("penalty").targets == ((0, 2), (2, 0))
    assert not get_game("penalty").targets_action_zero
    assert get_game("matching_pennies").targets == ()
    assert get_game("stag_hunt").targets_action_zero and get_game("ipd").targets_action_zero
    with pytest.raises(GameError, match="targets"):
        NormalFormGame("bad", np.zeros((2, 2, 2)), targets=((0, 5),))


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
