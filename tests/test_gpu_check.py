"""``make gpu-check``'s CPU half, as CI can run it: the script end to end with the
device half on the CPU (every comparison must come out exact there), what it says
without CUDA, and that its comparison catches a difference far smaller than any
porting error and far larger than float32 rounding."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_check  # noqa: E402

CHECKS = [f"parity/{c}" for c in gpu_check.PARITY_CASES] + [
    "critic_lr", "sweep", *(f"throughput/{c}" for c in gpu_check.QUICK_THROUGHPUT)]


def test_relative_error_is_exact_and_refuses_broken_input():
    a = [torch.tensor([3.0, 4.0]), torch.tensor([[1.0]])]
    assert gpu_check.rel_error(a, [t.clone() for t in a]) == 0.0
    assert gpu_check.rel_error(a, [a[0] + torch.tensor([0.0, 1e-3]), a[1]]) == \
        pytest.approx(1e-3 / (26 ** 0.5), rel=1e-3)  # 4 + 1e-3 in float32
    assert gpu_check.rel_error(a, a[:1]) == float("inf")  # a tensor missing
    assert gpu_check.rel_error(a, [a[0].reshape(2, 1), a[1]]) == float("inf")
    assert gpu_check.rel_error(a, [a[0] * float("nan"), a[1]]) == float("inf")
    assert gpu_check.rel_error([torch.zeros(2)], [torch.zeros(2)]) == 0.0


def test_comparison_catches_an_error_of_one_part_in_a_thousand():
    torch.manual_seed(0)
    ref = {"applied gradient": [torch.randn(64, 4), torch.randn(64)]}
    rounding = {"applied gradient": [t * (1 + 1e-6) for t in ref["applied gradient"]]}
    assert gpu_check.compare("x", ref, rounding)["ok"]
    off = {"applied gradient": [ref["applied gradient"][0] * (1 + 1e-3),
                                ref["applied gradient"][1]]}
    row = gpu_check.compare("x", ref, off)
    assert not row["ok"] and row["errors"]["applied gradient"] > gpu_check.TOLERANCE
    assert not gpu_check.compare("x", ref, {})["ok"]  # a quantity not computed


def test_device_cuda_without_cuda_is_refused_with_the_fix(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert gpu_check.main(["--device", "cuda", "--out", os.devnull]) == 2
    assert "run without --device for the CPU half" in capsys.readouterr().err


@pytest.mark.slow
def test_cpu_half_runs_every_check_and_compares_exactly(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--quick",
                           "--device", "cpu", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln[:4] in ("PASS", "FAIL", "SKIP")]
    assert [ln.split()[1] for ln in lines] == CHECKS, proc.stdout
    doc = json.loads(out.read_text())
    assert doc["ok"] and doc["device_half"] == "cpu"
    rows = {r["check"]: r for r in doc["checks"]}
    for case in gpu_check.PARITY_CASES:
        row = rows[f"parity/{case}"]
        # The same seed and batch on the same device: bit-equal, not just close.
        assert row["initial weights equal"] and set(row["errors"].values()) == {0.0}, row
        assert "applied gradient" in row["errors"]
        assert any("peer correction" in k for k in row["errors"]) == (case != "matrl")
    assert rows["critic_lr"]["rates"] == [3e-4, 1e-3]
    assert rows["sweep"]["finished"] == 2 and rows["sweep"]["digests_equal_cpu"]


@pytest.mark.slow
def test_without_a_device_half_every_learner_still_runs_on_the_cpu():
    import ray

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        rows = gpu_check.check_parity(None, envs=2)
        row = gpu_check.check_critic_lr(None, envs=2)
    finally:
        ray.shutdown()
    assert [r["ran_on"] for r in rows] == [["cpu"]] * len(gpu_check.PARITY_CASES)
    assert all(r["ok"] for r in rows), rows
    assert row["ok"] and row["ran_on"] == ["cpu"], row
