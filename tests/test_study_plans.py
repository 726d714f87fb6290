"""Every study folder is a valid set of sweeps before anything runs: it loads, and each
(env, variant) of it and of its smoke version plans (every arm's tuned example checked
as ``rllib train file`` checks it), without starting Ray."""

from pathlib import Path

import pytest

from rllib_metamapg.study.manifest import load_study
from rllib_metamapg.study.run import plan_study

STUDIES = sorted(p.parent for p in (Path(__file__).resolve().parents[1] / "studies")
                 .glob("*/study.yaml"))


@pytest.mark.parametrize("folder", STUDIES, ids=[p.name for p in STUDIES])
def test_every_study_and_its_smoke_version_plan(folder, tmp_path):
    import ray

    for smoke in (False, True):
        study = load_study(str(folder), smoke=smoke, out=str(tmp_path))
        plans = plan_study(study, str(tmp_path))
        assert len(plans) == len(study.units()) >= 1
        for plan in plans:
            assert plan.spec.seeds == study.seeds and set(study.arms) <= set(plan.spec.arms)
            assert plan.stop_iterations >= 1 and plan.checkpoint_interval >= 1
    assert not ray.is_initialized()
