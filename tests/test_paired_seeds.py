"""Paired seeds across processes: the same seed gives the same initial weights.

Tune runs every trial in its own worker process, each with its own
PYTHONHASHSEED; anything that depends on set/dict-of-str order (such as the
order modules are built in) breaks the pairing there and nowhere in-process.
"""

import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import ray
from rllib_metamapg import MetaMAPGConfig
from rllib_metamapg.callbacks.initial_weights_callback import weights_digest
ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
for arm in ("ippo", "meta_mapg"):
    algo = (MetaMAPGConfig().environment("stag_hunt").env_runners(num_env_runners=0)
            .training(arm=arm).debugging(seed=0).build_algo())
    print("DIGEST", arm, weights_digest(algo.learner_group.get_weights()), flush=True)
    algo.stop()
ray.shutdown()
"""


@pytest.mark.slow
def test_initial_weights_do_not_depend_on_python_hash_seed():
    digests = set()
    for hash_seed in ("1", "2"):  # these two built the modules in opposite orders before
        out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                             timeout=300, env={**os.environ, "PYTHONHASHSEED": hash_seed})
        assert out.returncode == 0, out.stderr[-2000:]
        lines = [ln.split() for ln in out.stdout.splitlines() if ln.startswith("DIGEST")]
        assert [ln[1] for ln in lines] == ["ippo", "meta_mapg"]
        digests.update(ln[2] for ln in lines)
    assert len(digests) == 1, digests
