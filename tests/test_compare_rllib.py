"""The RLlib comparison study, CI-sized: `metamapg study studies/compare_rllib --smoke`
(2 envs, 4 arms from the three methods, 2 paired seeds, each env's smoke budget).

It checks what makes the full study's table mean something: every env's sweep ran
every arm, seed s started every arm of every method from the same weights, MA-PROPS
really drew the composition's data (and nothing else did), each env's report has the
paired tests against ippo, the summary agrees with the reports, and a rerun continues
(finished envs are not swept again).
"""

import csv
import json
from pathlib import Path

import pytest

from rllib_metamapg.registry import method_of
from rllib_metamapg.study.manifest import load_study

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "studies" / "compare_rllib"


def _rows(sweep: Path):
    """{(arm, seed): last result row} of a sweep folder."""
    out = {}
    for result in sweep.glob("*/result.json"):
        params = json.loads((result.parent / "params.json").read_text())
        out[(params["arm"], params["seed"])] = json.loads(result.read_text().splitlines()[-1])
    return out


@pytest.mark.slow
def test_smoke_study_is_paired_samples_with_ma_props_and_reports_paired_tests(
        tmp_path, monkeypatch, capsys):
    import ray

    from rllib_metamapg.cli import main

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert not ray.is_initialized()
    study = load_study(str(STUDY), smoke=True)
    assert study.envs == ["stag_hunt", "no_conflict_19"] and study.seeds == [0, 1]
    methods = {a: method_of(a).name for a in study.arms}
    assert sorted(set(methods.values())) == ["matrl", "meta_mapg"] and any(
        "+ma_props" in a for a in study.arms)  # three methods: MA-PROPS composes

    import shutil

    folder = tmp_path / "compare_rllib"  # a copy: the test edits a setting below
    shutil.copytree(STUDY, folder)
    out = tmp_path / "out"
    args = ["study", str(folder), "--smoke", "--out", str(out), "--quiet",
            "--progress-every", "0"]
    assert main(args) == 0
    reports = out / "compare_rllib" / "reports"
    for env in study.envs:
        rows = _rows(out / study.sweep_name(env))
        assert set(rows) == {(a, s) for a in study.arms for s in study.seeds}
        for seed in study.seeds:  # same seed => same initial weights in every arm
            assert len({rows[(a, seed)]["metamapg_init"]["weights_sha256"]
                        for a in study.arms}) == 1
        assert len({rows[(study.arms[0], s)]["metamapg_init"]["weights_sha256"]
                    for s in study.seeds}) == len(study.seeds)
        for (arm, seed), row in rows.items():  # MA-PROPS sampled, and only there
            updates = row["env_runners"].get("sampler_behaviour_updates", 0)
            assert (updates > 0) == ("+ma_props" in arm), (env, arm, seed, updates)
        (result,) = json.loads((reports / env / "report.json").read_text())["results"]
        assert result["reference_arm"] == "ippo" and result["pairing_broken"] == []
        for arm in study.arms[1:]:
            assert result["tests_vs_reference"][arm]["pairs"] == len(study.seeds)
            assert result["tests_vs_reference"][arm]["mcnemar"] is not None
        with open(reports / env / "seeds.csv") as f:
            seeds = list(csv.DictReader(f))
        for seed in study.seeds:  # the report's digest column shows the pairing
            assert len({r["init_weights_sha256"] for r in seeds if int(r["seed"]) == seed}) == 1

    summary = json.loads((reports / "summary.json").read_text())
    assert summary["missing_envs"] == [] and list(summary["envs"]) == study.envs
    for env in study.envs:
        (result,) = json.loads((reports / env / "report.json").read_text())["results"]
        for arm in study.arms:
            row = summary["envs"][env]["arms"][arm]
            assert row["learners"] == result["arms"][arm]["learners"]
            assert row["n"] == len(study.seeds)
            assert (row["vs_reference"] is None) == (arm == "ippo")
            # A composition is also tested against its own arm on the same seeds.
            assert (row["vs_base"] or {}).get("arm") == ("ippo" if "+" in arm else None)
    # no_conflict_19 is scored by the on-target rate, Stag Hunt by the return.
    assert summary["envs"]["no_conflict_19"]["metric"].endswith("on_target_rate")
    assert summary["envs"]["stag_hunt"]["metric"].endswith("episode_return_mean")
    table = (reports / "summary.md").read_text()
    assert all(f"`{arm}`" in table for arm in study.arms) and "## no_conflict_19" in table

    # A rerun continues: both envs are finished, so no sweep starts again.
    capsys.readouterr()
    before = {p: p.stat().st_mtime_ns for p in out.rglob("result.json")}
    assert main(args) == 0
    said = capsys.readouterr().out
    assert said.count("already scored") == len(study.envs), said
    assert {p: p.stat().st_mtime_ns for p in out.rglob("result.json")} == before

    # On another machine (no sweep folder), a committed report of a finished sweep with
    # these settings counts as done: nothing is swept again.
    shutil.move(str(out / study.sweep_name("stag_hunt")), str(tmp_path / "elsewhere"))
    assert main(args) == 0
    said = capsys.readouterr().out
    assert "is of a finished sweep with these settings; kept" in said, said
    assert not (out / study.sweep_name("stag_hunt")).exists()
    shutil.move(str(tmp_path / "elsewhere"), str(out / study.sweep_name("stag_hunt")))

    # --report-only rewrites the reports and summary from the sweeps, running nothing.
    assert main(args + ["--report-only", "--reports", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert again["envs"] == summary["envs"]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("result.json")} == before

    # An edited setting is not "continued" with the old results: refused, naming it.
    base = folder / "no_conflict_19" / "base.yaml"
    base.write_text(base.read_text().replace("lr: 0.003", "lr: 0.002"))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "compare_rllib-no_conflict_19-smoke holds this env's sweep with other settings" \
        in err and "arm_configs" in err


def test_the_full_study_runs_every_rllib_arm_of_the_registry_comparison():
    from rllib_metamapg import registry

    study = load_study(str(STUDY))
    expected = [a for a in registry.experiment_arms("compare")
                if "rllib" in registry.get_arm(a).engines]
    assert study.arms == expected and study.arms[0] == "ippo"
    assert len(study.arms) >= 11 and len(study.envs) >= 7 and len(study.seeds) >= 20
    assert {"matrl", "ippo+ma_props", "matrl+ma_props", "handoff"} <= set(study.arms)


@pytest.mark.parametrize("text, field", [
    ("envs: [stag_hunt]\narms: compare\nseeds: 0-1\nreports: r\ncolour: red\n", "colour"),
    ("envs: [no_such_env]\narms: compare\nseeds: 0-1\nreports: r\n", "no_such_env"),
    ("envs: [ipd]\narms: compare\nseeds: 0-1\nreports: r\n", "ipd/base.yaml"),
    ("envs: [stag_hunt]\narms: [ippo, no_such_arm]\nseeds: 0-1\nreports: r\n", "no_such_arm"),
    ("envs: [stag_hunt]\narms: [ippo, lola]\nseeds: 0-1\nreports: r\n", "lola"),
    ("envs: [stag_hunt]\narms: compare\nseeds: three\nreports: r\n", "seeds"),
    ("envs: [stag_hunt]\narms: compare\nseeds: 0-1\n", "reports"),
    ("envs: [stag_hunt]\narms: compare\nseeds: 0-1\nreports: r\nmax_concurrent: 0\n",
     "max_concurrent"),
    ("envs: [stag_hunt\n", "not valid YAML"),
])
def test_a_bad_study_file_is_refused_naming_the_field(tmp_path, text, field):
    from rllib_metamapg.errors import UsageError

    (tmp_path / "stag_hunt").mkdir()
    (tmp_path / "stag_hunt" / "base.yaml").write_text(
        (STUDY / "stag_hunt" / "base.yaml").read_text())
    (tmp_path / "study.yaml").write_text(text)
    with pytest.raises(UsageError, match=field.replace("[", r"\[")):
        load_study(str(tmp_path))
