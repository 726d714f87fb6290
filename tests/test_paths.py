"""``metamapg tabular paths``: the corrections along learning trajectories (CI size)."""

import json

from rllib_metamapg.cli import main


def test_paths_writes_the_table_and_the_stag_hunt_peer_term_points_at_stag_stag(tmp_path,
                                                                                 capsys):
    out = tmp_path / "paths"
    assert main(["tabular", "paths", "--seeds", "12", "--steps", "60", "--batch-size", "64",
                 "--out", str(out)]) == 0
    doc = json.loads((out / "paths.json").read_text())
    assert set(doc["games"]) == {"stag_hunt", "ipd"}
    assert set(doc["games"]["ipd"]) == {"peer_only", "meta_mapg"}
    # In Stag Hunt the peer correction has a positive component toward (stag, stag) at
    # every step of every run (the full run: 100 %, about 16,000 steps per arm); a sign
    # or direction error would make it negative.
    for arm, table in doc["games"]["stag_hunt"].items():
        rows = [r for d in ("corner", "start") for o in ("entered", "never")
                for r in table["terms"]["peer"][d][o] if r["steps"]]
        assert rows and all(r["share_positive"] == 1.0 for r in rows), (arm, rows)
        steps = sum(r["steps"] for o in ("entered", "never")
                    for r in table["terms"]["peer"]["corner"][o])
        assert 0 < steps <= 12 * 61
    printed = capsys.readouterr().out
    assert "| ipd | meta_mapg | peer | corner |" in printed
    assert (out / "paths.md").read_text().count("\n") == 2 + 2 * 2 * 2 * 2 * 2
