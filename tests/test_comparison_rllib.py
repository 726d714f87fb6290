"""The three equilibrium-selection methods side by side in RLlib: one paired sweep over
Meta-MAPG's `ippo` and `peer_only`, MATRL, and MA-PROPS sampling for `ippo`, then one
report with paired tests against `ippo`."""

import json

import pytest

ARMS = ["ippo", "peer_only", "matrl", "ippo+ma_props"]


@pytest.mark.slow
@pytest.mark.long
@pytest.mark.parametrize("n_seeds", [8])
def test_paired_sweep_of_three_methods_and_a_composition_is_reported(tmp_path, monkeypatch,
                                                                     n_seeds):
    # 8 seeds (32 trials, ~3 minutes) in make test-long; make test runs the same arms
    # on two envs through the study (tests/test_compare_rllib.py).
    import ray

    from rllib_metamapg.cli import main

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert not ray.is_initialized()
    seeds = list(range(n_seeds))
    code = main(["sweep", "--env", "stag_hunt", "--arms", ",".join(ARMS), "--seeds",
                 f"0-{n_seeds - 1}",
                 "--smoke", "--storage-path", str(tmp_path / "results"), "--name", "cmp",
                 "--max-concurrent", "2", "--quiet", "--progress-every", "0", "--report"])
    assert code == 0
    exp = tmp_path / "results" / "cmp"
    meta = json.loads((exp / "metamapg_sweep.json").read_text())
    assert meta["arms"] == ARMS
    assert meta["methods"] == {"ippo": "meta_mapg", "peer_only": "meta_mapg",
                               "matrl": "matrl", "ippo+ma_props": "meta_mapg"}
    digests, sampled = {}, {}
    for result in exp.glob("*/result.json"):
        row = json.loads(result.read_text().splitlines()[-1])
        params = json.loads((result.parent / "params.json").read_text())
        digests[(params["arm"], params["seed"])] = row["metamapg_init"]["weights_sha256"]
        sampled[params["arm"]] = row["env_runners"].get("sampler_behaviour_updates", 0)
    assert len(digests) == len(ARMS) * len(seeds)
    for seed in seeds:  # same seed => same initial weights in every arm of every method
        assert len({digests[(arm, seed)] for arm in ARMS}) == 1
    assert len({digests[("ippo", s)] for s in seeds}) == len(seeds)
    assert sampled["ippo+ma_props"] > 0 and sampled["ippo"] == 0
    report = json.loads((exp / "report" / "report.json").read_text())
    (result,) = report["results"]
    assert result["reference_arm"] == "ippo" and result["pairing_broken"] == []
    assert set(result["arms"]) == set(ARMS)
    for arm in ARMS[1:]:
        assert result["tests_vs_reference"][arm]["pairs"] == len(seeds)
    table = (exp / "report" / "report.md").read_text()
    assert all(arm in table for arm in ARMS)
