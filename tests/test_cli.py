"""End-to-end runs of ``metamapg tabular ...`` and its refusals of bad input."""

import re
import json
import subprocess
import sys

import pytest

from rllib_metamapg.cli import main

SMALL = ["--steps", "20", "--batch-size", "32"]


def test_basin_writes_json_csv_png(tmp_path, capsys):
    out = tmp_path / "basin"
    assert main(["tabular", "basin", "--grid", "5", "--mode", "exact", "--out", str(out),
                 "--arms", "meta_mapg"] + SMALL) == 0
    doc = json.loads((out / "basin.json").read_text())
    assert set(doc["arms"]) == {"ippo", "meta_mapg"}
    assert len(doc["outcome_grid"]["ippo"]) == 5
    assert (out / "basin.png").stat().st_size > 1000
    assert (out / "basin.csv").read_text().count("\n") == 1 + 2 * 25
    assert "meta_mapg" in capsys.readouterr().out


def test_basin_with_payoff_and_config(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("grid: 4\nmode: exact\nsteps: 10\narms: [peer_only]\n")
    out = tmp_path / "b"
    assert main(["tabular", "basin", "--config", str(cfg), "--payoff", "[[5, 0], [3, 3]]",
                 "--steps", "15", "--out", str(out)]) == 0
    doc = json.loads((out / "basin.json").read_text())
    assert doc["settings"]["steps"] == 15 and doc["settings"]["mode"] == "exact"
    assert len(doc["grid"]) == 4


def test_ablation_table_and_resume(tmp_path, capsys):
    out = tmp_path / "abl"
    args = ["tabular", "ablation", "--games", "stag_hunt", "--seeds", "12", "--out", str(out)]
    assert main(args + SMALL) == 0
    doc = json.loads((out / "ablation.json").read_text())
    pg = doc["games"]["stag_hunt"]["ippo"]
    assert pg["n"] == 12 and len(pg["per_seed"]) == 12
    assert "mcnemar_p" in doc["games"]["stag_hunt"]["peer_only"]["vs_reference"]
    assert "| ippo |" in capsys.readouterr().out
    assert main(args + SMALL) == 0  # second run reuses the cached game
    assert "reusing finished result" in capsys.readouterr().err


def test_cooldown_and_alignment_run(tmp_path, capsys):
    out = tmp_path / "c"
    assert main(["tabular", "cooldown", "--seeds", "6", "--settle-steps", "50",
                 "--handoff", "10", "--out", str(out)] + SMALL) == 0
    doc = json.loads((out / "cooldown.json").read_text())
    assert set(doc["arms"]) == {"ippo", "meta_mapg", "handoff"}
    # The paper's rates beside ours (Stag Hunt), paired tests against PG, and the
    # shape-then-cool arm against the same arm never cooled.
    arms = doc["arms"]
    assert [arms[a]["paper_rate"] for a in ("ippo", "meta_mapg", "handoff")] == [
        0.3125, 0.4125, 0.425]
    assert "vs_reference" not in arms["ippo"] and "mcnemar_p" in arms["handoff"]["vs_reference"]
    assert arms["handoff"]["vs_constant"]["arm"] == "meta_mapg"
    assert "vs_constant" not in arms["meta_mapg"]
    outcome = capsys.readouterr().out
    assert "(paper 42.50%)" in outcome and "vs meta_mapg" in outcome
    out = tmp_path / "a"
    assert main(["tabular", "alignment", "--grid", "5", "--mode", "exact", "--lambdas", "0",
                 "0.5", "--lipschitz-samples", "5", "--out", str(out)] + SMALL) == 0
    geo = json.loads((out / "alignment.json").read_text())["local_geometry"]
    assert geo["phi_star_converged"] and geo["mu"] > 0


@pytest.mark.parametrize("argv, field", [
    (["basin", "--game", "stag_hnt"], "game='stag_hnt'"),
    (["basin", "--arms", "ippo", "lolla"], "arm='lolla'"),
    (["basin", "--payoff", "[[4, NaN], [3, 2]]"], "finite"),
    (["basin", "--payoff", "[[4, 0, 1], [3, 2, 1]]"], "square"),
    (["basin", "--payoff", "[[4, 0], [3"], "--payoff"),
    (["basin", "--lambda-schedule", "anneal", "--anneal-power", "0.7"], "anneal_power=0.7"),
    (["basin", "--steps", "0"], "steps=0"),
    (["basin", "--threshold", "1.5"], "--threshold"),
    (["basin", "--grid", "1"], "grid=1"),
    (["ablation", "--games", "ipd", "nope"], "game='nope'"),
    (["cooldown", "--game", "ipd_infinite", "--mode", "sampled"], "finite horizon"),
    (["basin", "--game", "penalty"], "game 'penalty': its target"),
    (["ablation", "--games", "stag_hunt", "matching_pennies"], "game 'matching_pennies'"),
])
def test_bad_input_exits_2_naming_the_field_and_writes_nothing(tmp_path, argv, field):
    out = tmp_path / "never"
    proc = subprocess.run([sys.executable, "-m", "rllib_metamapg.cli", "tabular", *argv,
                           "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert field in proc.stderr
    assert not out.exists()


def test_bad_config_key(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("stepz: 3\n")
    proc = subprocess.run([sys.executable, "-m", "rllib_metamapg.cli", "tabular", "basin",
                           "--config", str(cfg), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown key 'stepz'" in proc.stderr


def test_tabular_engine_does_not_import_ray():
    code = ("import sys, rllib_metamapg.tabular.dynamics, rllib_metamapg.cli; "
            "assert not any(m == 'ray' or m.startswith('ray.') for m in sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_tuned_tabular_configs_are_valid(tmp_path):
    """Every tuned tabular YAML parses, has no dead keys and passes validation."""
    from pathlib import Path

    from rllib_metamapg.cli import build_parser
    from rllib_metamapg.tabular_experiments.command import COMMANDS
    from rllib_metamapg.tabular_experiments.options import (learning_settings, paper_defaults,
                                                            resolve)

    files = sorted(Path(__file__).parents[1].glob("tuned_examples/tabular/*.yaml"))
    assert len(files) >= 4
    for f in files:
        # The experiment is the one its usage line runs (lola-ipd.yaml is an ablation).
        usage = re.search(r"metamapg tabular (\w+) --config", f.read_text())
        experiment = usage.group(1) if usage else f.stem.split("-")[0]
        args = build_parser().parse_args(["tabular", experiment, "--config", str(f),
                                          "--out", str(tmp_path)])
        values = resolve(args, dict(paper_defaults(), **COMMANDS[experiment][0]))
        learning_settings(values)


def test_list_options_take_both_forms(tmp_path):
    for n, arms in enumerate((["pg,peer_only"], ["ippo", "peer_only"])):
        out = tmp_path / f"b{n}"
        assert main(["tabular", "basin", "--grid", "3", "--mode", "exact", "--steps", "3",
                     "--out", str(out), "--arms", *arms]) == 0
        assert json.loads((out / "basin.json").read_text())["arms"].keys() == {"ippo",
                                                                               "peer_only"}
    out = tmp_path / "abl"
    assert main(["tabular", "ablation", "--games", "stag_hunt,pd", "--seeds", "4",
                 "--arms", "peer_only", "--out", str(out)] + SMALL) == 0
    assert set(json.loads((out / "ablation.json").read_text())["games"]) == {"stag_hunt", "pd"}


# Errors that are not about a user's input: a solver that failed, the docs tool's own
# command, and a sampler check that validate() turns into RLlib's config error.
NOT_INPUT_ERRORS = {"MetaGameError", "FigureError", "BehaviourError", "UsageError"}


def test_every_input_error_class_is_a_usage_error():
    """The command reports any UsageError as 'metamapg: error: ...' (exit 2); an input
    error class that is not one would show a traceback instead."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "rllib_metamapg"
    found = {}
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Error"):
                found[node.name] = [getattr(b, "id", getattr(b, "attr", "")) for b in node.bases]
    assert {"RegistryError", "GameError", "ConvergenceError", "CheckpointError"} <= set(found)
    wrong = {name: bases for name, bases in found.items()
             if name not in NOT_INPUT_ERRORS and "UsageError" not in bases}
    assert not wrong, wrong


def test_an_input_error_is_one_line_not_a_traceback(capsys):
    from rllib_metamapg.errors import UsageError

    assert main(["tabular", "convergence", "--games-per-type", "0", "--out", "x"]) == 2
    assert "error: --games-per-type=0" in capsys.readouterr().err
    with pytest.raises(UsageError):  # --debug shows the traceback
        main(["--debug", "tabular", "convergence", "--games-per-type", "0", "--out", "x"])
