"""A toy method, "PG with a scaled step", outside the package: docs/methods.md's
recipe file for file, registered by tests/test_registry.py with one call."""

import dataclasses

from rllib_metamapg.registry import ArmSpec, MethodSpec
from rllib_metamapg.tabular.settings import setting


@dataclasses.dataclass(frozen=True)
class ScaledPGSettings:  # the method's own setting: `metamapg tabular --step-scale`
    step_scale: float = setting(2.0, "scaled_pg: step multiplier", low=0, low_open=True)


METHOD = MethodSpec(
    name="scaled_pg",
    help="plain PG with its step multiplied by a constant (a registry test method)",
    arms=(ArmSpec("scaled_pg", rllib={"step_scale": 2.0}, help="PG with twice the step"),),
    tabular="toy_scaled_pg.tabular_update:ScaledPGTabular",
    algorithm="toy_scaled_pg.algorithm:ScaledPG",
    settings=ScaledPGSettings,
    experiments={"basin": ("scaled_pg",)},
)
