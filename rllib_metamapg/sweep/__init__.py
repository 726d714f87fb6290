"""Paired-seed sweeps over arms x seeds with Ray Tune (``metamapg sweep``)."""

from rllib_metamapg.sweep.plan import SweepPlan, SweepSpec, parse_seeds, plan_sweep

__all__ = ["SweepPlan", "SweepSpec", "parse_seeds", "plan_sweep", "resume_sweep", "run_sweep"]


def __getattr__(name):
    # run/resume import Tune's runtime; keep `import rllib_metamapg.sweep` light.
    if name in ("run_sweep", "resume_sweep"):
        from rllib_metamapg.sweep import run

        return getattr(run, name)
    raise AttributeError(name)
