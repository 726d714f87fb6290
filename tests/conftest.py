import os

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def f64():
    return torch.float64


@pytest.fixture(scope="module")
def ray_local():
    """A 2-CPU local Ray instance per test module, shut down afterwards."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    from rllib_metamapg.rllib_base.algorithm import register_all

    register_all()  # Tune registrations reach only the Ray session they were made in
    yield ray
    ray.shutdown()


@pytest.fixture(autouse=True)
def _no_size_overrides(monkeypatch):
    """Tests run at the sizes they ask for, whatever the shell exported: smoke mode
    and the size override are set by the tests that test them."""
    monkeypatch.delenv("METAMAPG_SMOKE", raising=False)
    monkeypatch.delenv("METAMAPG_ALLOW_LARGE", raising=False)
