"""A sweep's trials run in reused processes (Tune's ``reuse_actors``) and every
worker gets one string-hash seed; a trial's results are the same either way.

* Reuse: a 4-trial sweep in one process gives, row for row, what a sweep of
  fresh processes gives for the same (arm, seed) -- the 4th trial ran after
  three others in that process.
* Hash seed: RLlib orders a step's agents by a Python set (string-hash order,
  salted per process), which decides which module samples first; the workers
  Ray starts for us get ``PYTHONHASHSEED`` so a seed reproduces.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rllib_metamapg.hash_seed import VAR, worker_runtime_env

ROOT = Path(__file__).resolve().parents[1]


# Result fields that measure the machine (timers, throughputs, dates, process ids),
# not the learning.
_VOLATILE = re.compile(r"time|timer|throughput|duration|date|/pid$|trial_id|hostname|"
                       r"node_ip|^/perf/|/sample$|^/config/")


def _leaves(obj, path=""):
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _leaves(value, f"{path}/{key}")
    elif not _VOLATILE.search(path):
        yield path, obj


def _trials(exp: Path):
    """(arm, seed) -> (pid, the learning fields of every result row as JSON text;
    NaN, RLlib's "not measured this iteration", compares equal there)."""
    out = {}
    for d in exp.glob("MetaMAPG_*"):
        params = json.loads((d / "params.json").read_text())
        rows = [json.loads(ln) for ln in (d / "result.json").read_text().splitlines() if ln]
        out[(params["arm"], params["seed"])] = (
            rows[0]["pid"], [json.dumps(sorted(_leaves(r))) for r in rows])
    return out


@pytest.mark.slow
def test_a_reused_process_runs_the_trial_a_new_process_would(tmp_path):
    from rllib_metamapg.cli import main

    common = ["sweep", "--env", "stag_hunt", "--arms", "ippo,meta_mapg", "--smoke",
              "--storage-path", str(tmp_path), "--quiet", "--progress-every", "0"]
    assert main(common + ["--seeds", "0-1", "--max-concurrent", "1", "--name", "reused"]) == 0
    assert main(common + ["--seeds", "1", "--max-concurrent", "2", "--name", "fresh",
                          "--no-reuse-actors"]) == 0
    reused, fresh = _trials(tmp_path / "reused"), _trials(tmp_path / "fresh")
    assert len(reused) == 4 and len(fresh) == 2
    assert len({pid for pid, _ in reused.values()}) == 1  # one process ran all four
    assert len({pid for pid, _ in fresh.values()}) == 2
    for key, (_, rows) in fresh.items():
        assert len(rows) == len(reused[key][1]) >= 2
        # Same initial weights, samples, losses and evaluations, to the bit.
        assert rows == reused[key][1], key
    # The paired seeds sampled alike before any update.
    first = [dict(json.loads(reused[(arm, 1)][1][0]))["/env_runners/episode_return_mean"]
             for arm in ("ippo", "meta_mapg")]
    assert first[0] == first[1]
    # ... and the rows hold the learning: losses and the corrections' norms.
    fields = dict(json.loads(reused[("meta_mapg", 1)][1][-1]))
    assert {"/learners/player_0/total_loss", "/learners/player_0/metamapg_lambda"} <= set(fields)


def _stepped_order(hash_seed: str):
    code = ("from ray.rllib.env.multi_agent_episode import MultiAgentEpisode\n"
            "e = MultiAgentEpisode(observations=[{'player_0': 0, 'player_1': 0}])\n"
            "print(','.join(e.get_agents_that_stepped()))")
    env = {**os.environ, VAR: hash_seed}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True).stdout.strip()


def test_rllib_orders_a_steps_agents_by_string_hash():
    """Why the workers need one hash seed (fails once RLlib orders agents itself)."""
    # Two salts that order the two agents differently (found by trying a few).
    assert {_stepped_order("0"), _stepped_order("1")} == {"player_0,player_1",
                                                          "player_1,player_0"}


def test_workers_started_for_a_sweep_share_the_hash_seed(monkeypatch):
    import ray

    from rllib_metamapg.sweep import run

    monkeypatch.delenv(VAR, raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    expected = subprocess.run([sys.executable, "-c", "print(hash('player_0'))"],
                              env={**os.environ, VAR: "0"}, capture_output=True,
                              text=True, check=True).stdout.strip()
    assert run._init_ray()
    try:
        @ray.remote(num_cpus=0)
        def worker_hash():
            return os.environ.get(VAR), str(hash("player_0"))

        assert set(ray.get([worker_hash.remote() for _ in range(3)])) == {("0", expected)}
        # ... and no dashboard unless asked (--ray-ui), as RLlib's command does.
        assert not ray._private.worker._global_node.address_info.get("webui_url")
    finally:
        run.shutdown_ray()


def test_runtime_env_keeps_the_users_choices(monkeypatch):
    monkeypatch.delenv(VAR, raising=False)
    monkeypatch.delenv("RAY_JOB_CONFIG_JSON_ENV_VAR", raising=False)
    assert worker_runtime_env() == {"env_vars": {VAR: "0"}}
    assert worker_runtime_env({"pip": ["x"], "env_vars": {"A": "1"}}) == {
        "pip": ["x"], "env_vars": {"A": "1", VAR: "0"}}
    assert worker_runtime_env({"env_vars": {VAR: "7"}}) == {"env_vars": {VAR: "7"}}
    monkeypatch.setenv(VAR, "random")  # the user's own value, opting out included
    assert worker_runtime_env() == {"env_vars": {VAR: "random"}}
    # A submitted job's env already reaches its workers; Ray refuses a second setting.
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", "{}")
    assert worker_runtime_env() is None
