"""The paper's tabular evidence (Sec. 5, Table 1, Fig. 1) under its settings, sampled mode.

Fixed seeds make these deterministic; tolerances are the paper's: +-3 points for
the basin map, the published Wilson 95% intervals for Table 1.
"""

import pytest
from scipy.stats import fisher_exact

from rllib_metamapg.registry import parse_arms
from rllib_metamapg.stats import mcnemar_paired
from rllib_metamapg.tabular.dynamics import LearningSettings, simulate
from rllib_metamapg.tabular_experiments.ablation import paired_init
from rllib_metamapg.tabular_experiments.basin import grid_values, run_basin
from rllib_metamapg.tabular.games import get_game
from rllib_metamapg.tabular.policies import TabularPolicy

ABLATION_ARMS = ["ippo", "own_only", "peer_only", "meta_mapg"]
# Table 1: Wilson 95% CIs in percent.
TABLE1 = {"stag_hunt": {"ippo": (19.3, 36.4), "own_only": (19.3, 36.4),
                        "peer_only": (32.8, 51.8), "meta_mapg": (32.8, 51.8)},
          "ipd": {"ippo": (4.1, 15.0), "own_only": (4.1, 15.0),
                  "peer_only": (23.7, 41.7), "meta_mapg": (28.2, 46.8)}}


def test_basin_map_matches_figure_1():
    res = run_basin(get_game("stag_hunt"), parse_arms(["ippo", "own_only", "meta_mapg"]),
                    LearningSettings(steps=140, batch_size=192), grid_values(21, 0.05, 0.95),
                    threshold=0.82, seed=0)
    f = {a: 100 * x for a, x in res.fractions().items()}
    assert abs(f["ippo"] - 27.0) <= 3.0
    assert abs(f["meta_mapg"] - 42.6) <= 3.0
    assert abs(f["own_only"] - f["ippo"]) <= 2.0
    s = res.summary()["meta_mapg"]
    assert s["gained_vs_reference"] > 50 and s["lost_vs_reference"] <= 3


def ablation(game_name, seeds, seed=0):
    game = get_game(game_name)
    theta0 = paired_init(TabularPolicy.for_game(game), seeds, 1.35, seed)
    settings = LearningSettings(steps=260, batch_size=384)
    res = simulate(game, parse_arms(ABLATION_ARMS), theta0, settings, seed=seed + 1)
    return dict(zip(res.arms, res.success(0.82).numpy()))


def test_stag_hunt_table_1():
    ok = ablation("stag_hunt", 100)
    for arm, (lo, hi) in TABLE1["stag_hunt"].items():
        assert lo <= 100 * ok[arm].mean() <= hi, arm
    for arm in ("peer_only", "meta_mapg"):
        assert mcnemar_paired(ok["ippo"], ok[arm])["p_value"] < 0.01


@pytest.mark.slow
def test_ipd_table_1_consistent_with_the_paper():
    """IPD over 300 paired inits (~30 s). A 100-seed batch moves by several points
    with its initial draws (seeds 0/1/2 give pg 10/3/1 %), so instead of one batch
    against the paper's interval we test consistency: a Fisher exact test of our
    300 seeds against the paper's counts out of 100, per arm; and the paired claims:
    peer-aware arms beat pg (McNemar p < 0.01), own_only does not differ from pg."""
    ok = ablation("ipd", 300)
    paper = {"ippo": 8, "own_only": 8, "peer_only": 32, "meta_mapg": 37}
    for arm, k in paper.items():
        ours = int(ok[arm].sum())
        p = fisher_exact([[ours, 300 - ours], [k, 100 - k]]).pvalue
        assert p > 0.01, (arm, ours, p)
    for arm in ("peer_only", "meta_mapg"):
        assert mcnemar_paired(ok["ippo"], ok[arm])["p_value"] < 0.01
    assert mcnemar_paired(ok["ippo"], ok["own_only"])["p_value"] > 0.01
