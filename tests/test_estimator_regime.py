"""CI-sized sibling of benchmarks/estimator_regime.py: on the 12-round IPD, whole
episodes give corrections of the right size and 8-step chunks of cut episodes give
about a quarter of it in the same direction (the table in docs/rllib.md).

Two cells of the benchmark at 256 episodes per batch with the exact value as
baseline, 24 batches each (~6,000 episodes): the benchmark's full run (32,000
episodes per cell) measured projections 1.00 / 0.25 for the peer term there; the
bounds leave room for the smaller sample (seed 0)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from estimator_regime import ETA, THETAS, cell, exact  # noqa: E402

pytestmark = pytest.mark.slow


def test_cut_chunks_shrink_the_corrections_and_whole_episodes_do_not():
    theta = THETAS["mixed"]
    ref = exact(theta, ETA, unroll_length=1)
    whole, cut = (cell(theta, ref, episodes=256, baseline="exact", cut=c, length=1,
                       total=24 * 256) for c in ("whole", "cut8"))
    assert 0.85 <= whole["peer"]["projection"] <= 1.15, whole
    assert whole["peer"]["bias_cos"] >= 0.98, whole
    assert 0.15 <= cut["peer"]["projection"] <= 0.35, cut
    assert cut["peer"]["bias_cos"] >= 0.95, cut
    assert cut["own"]["projection"] <= 0.45, cut
