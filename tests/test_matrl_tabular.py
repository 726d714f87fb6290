"""MATRL in probability space: the meta-game solvers, the update's special cases, and the
paper's Table 1 on random 2x2 games (a CI-sized run; the 1000-game run is in docs/matrl.md)."""

import itertools
import json

import numpy as np
import pytest

from rllib_metamapg.cli import main
from rllib_metamapg.matrl import iga
from rllib_metamapg.matrl.meta_game import nash_gap, solve_2x2, solve_n
from rllib_metamapg.tabular_experiments.convergence import PAPER, run_convergence

MP = np.array([[1.0, -1.0], [-1.0, 1.0]])


def test_matching_pennies_meta_game_has_the_half_half_equilibrium():
    for choice in ("last", "first", "random"):
        rho1, rho2 = solve_2x2(MP, -MP, choice)
        assert (rho1, rho2) == pytest.approx((0.5, 0.5))


def test_several_equilibria_follow_the_choice_rule():
    coord = np.array([[2.0, 0.0], [0.0, 1.0]])  # pure (cur, cur), (pred, pred), mixed 1/3
    assert solve_2x2(coord, coord, "first") == (1.0, 1.0)
    assert solve_2x2(coord, coord, "last") == pytest.approx((1 / 3, 1 / 3))
    rng = np.random.default_rng(0)
    seen = {tuple(np.round(solve_2x2(coord, coord, "random", rng), 6)) for _ in range(60)}
    assert seen == {(1.0, 1.0), (0.0, 0.0), (round(1 / 3, 6), round(1 / 3, 6))}
    pd = np.array([[3.0, 0.0], [5.0, 1.0]])  # dominant second strategy: one equilibrium
    for choice in ("first", "last"):
        assert solve_2x2(pd, pd.T, choice) == (0.0, 0.0)
    # Batched: one call, many games, each its own answer.
    both = solve_2x2(np.stack([coord, MP]), np.stack([coord, -MP]), "first")
    assert np.allclose(both, [[1.0, 0.5], [1.0, 0.5]])


def test_meta_game_of_the_current_profile_is_zero_and_rho_limits_are_il_and_il_pp():
    r1, r2 = iga.random_games("cyclic", 50)
    game = iga.Game(r1, r2)
    x, y = np.full(50, 0.9), np.full(50, 0.2)
    g1, g2 = game.gradients(x, y)
    xh, yh = np.clip(x + 0.02 * g1, 0, 1), np.clip(y + 0.02 * g2, 0, 1)
    a, b = iga.meta_game(game, x, y, xh, yh)
    assert np.all(a[:, 0, 0] == 0) and np.all(b[:, 0, 0] == 0)
    # g in the normal form is V(sigma) - V(pi): check one entry by hand.
    v1 = lambda xx, yy: iga.values(r1, r2, xx, yy)[0]  # noqa: E731
    assert np.allclose(a[:, 1, 0], v1(xh, y) - v1(x, y))
    steps = iga.Steps()
    rules = iga._rules(steps, "last", None)
    # rho = 1: best response to the current policies = IGA with the BR step.
    assert np.allclose(iga.step_matrl(game, x, y, steps, rho=(1.0, 1.0)),
                       rules["iga_br"](game, x, y))
    # rho = 0 without BR: move to the prediction (the trust step, IGA).
    assert np.allclose(iga.step_matrl(game, x, y, steps, best_response=False, rho=(0.0, 0.0)),
                       rules["iga"](game, x, y))
    # rho = 0 with BR: IL-PP, the best response to the opponent's prediction.
    xp = np.clip(x + steps.br * game.v1.dx(yh), 0, 1)
    assert np.allclose(rules["il_pp"](game, x, y)[0], xp)


def test_n_player_solver_matches_brute_force_on_random_three_player_games():
    rng = np.random.default_rng(3)
    for _ in range(12):
        payoffs = rng.normal(size=(3, 2, 2, 2))
        p, gap = solve_n(payoffs)
        assert gap < 1e-9
        # Brute force: no player gains by any pure deviation.
        for i in range(3):
            for dev in (1.0, 0.0):
                q = p.copy()
                q[i] = dev
                mix = [np.array([v, 1 - v]) for v in p]
                mq = [np.array([v, 1 - v]) for v in q]
                value = lambda m: sum(  # noqa: E731
                    payoffs[(i,) + s] * np.prod([m[j][s[j]] for j in range(3)])
                    for s in itertools.product((0, 1), repeat=3))
                assert value(mq) <= value(mix) + 1e-6
    # Two players: the solver finds one of the 2x2 enumeration's equilibria.
    coord = np.stack([np.array([[2.0, 0.0], [0.0, 1.0]])] * 2)
    p, gap = solve_n(coord)
    assert gap < 1e-12 and nash_gap(coord, p) < 1e-12


def test_matching_pennies_converges_under_matrl_through_its_best_response_to_predictions():
    r1, r2 = MP[None], -MP[None]
    ok, step = iga.run("matrl", r1, r2)
    assert ok[0] and 0 < step[0] < 1000
    for cycling in ("iga", "iga_br", "iga_pp"):  # IGA cycles around (1/2, 1/2)
        assert not iga.run(cycling, r1, r2)[0][0], cycling
    # What converges is the best response to the predictions: IL-PP (rho = 0) takes the
    # same path (the meta-game answers rho = (0, 0) here), MATRL without it does not.
    assert iga.run("il_pp", r1, r2)[1][0] == step[0]
    assert not iga.run("matrl_no_br", r1, r2)[0][0]


def test_iga_pp_takes_the_public_codes_step_with_an_unclipped_prediction():
    """By hand: R1 = [[3, 0], [0, 1]] (dV1/dx = 4y - 1), R2 = [[2, 0], [0, 1]]
    (dV2/dy = 3x - 1), from x = 0.8, y = 0.995.  The predictions are
    x + 0.01 (4 * 0.995 - 1) = 0.8298 and y + 0.01 (3 * 0.8 - 1) = 1.009 (outside
    [0, 1]); x' = 0.8 + 0.02 (4 * 1.009 - 1) = 0.86072 and y' = clip(0.995 + 0.02
    (3 * 0.8298 - 1)) = 1.  Clipping the prediction to 1 first gives x' = 0.86."""
    r1 = np.array([[[3.0, 0.0], [0.0, 1.0]]])
    r2 = np.array([[[2.0, 0.0], [0.0, 1.0]]])
    game = iga.Game(r1, r2)
    rules = iga._rules(iga.Steps(), "last", np.random.default_rng(0))
    x, y = rules["iga_pp"](game, np.array([0.8]), np.array([0.995]))
    assert x[0] == pytest.approx(0.86072, abs=1e-12) and y[0] == 1.0
    x, y = rules["iga_pp_clipped"](game, np.array([0.8]), np.array([0.995]))
    assert x[0] == pytest.approx(0.86, abs=1e-12) and y[0] == 1.0


def test_table1_matches_the_paper_for_iga_and_matrl_and_shows_the_step_size_confound():
    # The paper's full size: 1000 games per type (a few seconds: one batch per learner;
    # at 200 games the mean steps still move by 25 % with the game sample).
    doc = run_convergence(1000, ("iga", "iga_pp", "iga_pp_clipped", "matrl", "iga_br",
                                 "il_pp"))
    # IGA-PP as the public code runs it: cyclic rate 0.797 in an independent
    # re-implementation of that code on the same 1000 games (the paper: 0.809); the
    # clipped prediction converges less often there.
    assert abs(doc["types"]["cyclic"]["iga_pp"]["rate"] - 0.797) <= 0.02
    assert (doc["types"]["cyclic"]["iga_pp_clipped"]["rate"]
            < doc["types"]["cyclic"]["iga_pp"]["rate"] - 0.02)
    for kind, row in doc["types"].items():
        steps = {m: row[m]["mean_steps"] for m in row}
        # MATRL takes the fewest steps of IGA / IGA-PP / MATRL in every type ...
        assert steps["matrl"] < min(steps["iga"], steps["iga_pp"]), (kind, steps)
        # ... and IGA, IGA-PP and MATRL land within the reference's +-0.04 / +-15 % of
        # the paper.
        for m in ("iga", "iga_pp", "matrl"):
            rate, paper_steps = PAPER[kind][m]
            assert abs(row[m]["rate"] - rate) <= 0.04, (kind, m, row[m])
            assert abs(steps[m] / paper_steps - 1) <= 0.15, (kind, m, steps)
        # IGA with MATRL's BR step gets nearly all of it: within 3 % of MATRL's steps.
        assert abs(steps["iga_br"] / steps["matrl"] - 1) <= 0.03, (kind, steps)
        # The meta-game answers rho = (0, 0) in > 99 % of iterations: IL-PP (rho = 0
        # without solving) is MATRL here, to within 1 %.
        assert abs(row["il_pp"]["rate"] - row["matrl"]["rate"]) <= 0.01, (kind, row)
        assert abs(steps["il_pp"] / steps["matrl"] - 1) <= 0.01, (kind, steps)


def test_convergence_command_writes_a_set_and_refuses_bad_input(tmp_path, capsys):
    out = tmp_path / "conv"
    assert main(["tabular", "convergence", "--games-per-type", "10", "--iters", "50",
                 "--methods", "iga,matrl", "--out", str(out)]) == 0
    doc = json.loads((out / "convergence.json").read_text())
    assert set(doc["types"]) == {"coordination", "anticoordination", "cyclic"}
    assert {"rate", "mean_steps"} <= set(doc["types"]["cyclic"]["matrl"])
    assert (out / "convergence.csv").is_file() and (out / "convergence.png").is_file()
    assert main(["tabular", "convergence", "--games-per-type", "0", "--out",
                 str(tmp_path / "x")]) == 2
    assert "--games-per-type=0" in capsys.readouterr().err
    assert main(["tabular", "convergence", "--dynamics", "lola", "--out",
                 str(tmp_path / "y")]) == 2
    assert "--dynamics: ['lola']" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
