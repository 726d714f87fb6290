"""A toy method, "PG with a scaled step", outside the package: docs/methods.md's
recipe file for file, registered by tests/test_registry.py with one call."""

from rllib_metamapg.registry import ArmSpec, MethodSpec

METHOD = MethodSpec(
    name="scaled_pg",
    help="plain PG with its step multiplied by a constant (a registry test method)",
    arms=(ArmSpec("scaled_pg", options={"scale": 2.0}, rllib={"step_scale": 2.0},
                  help="PG with twice the step"),),
    tabular="toy_scaled_pg.tabular_update:ScaledPGTabular",
    algorithm="toy_scaled_pg.algorithm:ScaledPG",
    experiments={"basin": ("scaled_pg",)},
)
