"""A toy method, "PG with a scaled step", defined outside the package: the registry test's
proof that one folder plus one ``register_method`` call is all a method needs.

The tabular update is ``scale * v`` (plain PG with the step multiplied); the RLlib
side is PPO whose loss is multiplied by ``step_scale`` (with Adam this changes
little, which is fine: the test is about plumbing and pairing, not performance).
"""

from rllib_metamapg.registry import ArmSpec, MethodSpec

METHOD = MethodSpec(
    name="scaled_pg",
    help="plain PG with its step multiplied by a constant (a registry test method)",
    arms=(ArmSpec("scaled_pg", options={"scale": 2.0}, rllib={"step_scale": 2.0},
                  help="PG with twice the step"),),
    tabular="toy_scaled_pg.tabular:ScaledPGTabular",
    algorithm="toy_scaled_pg.algorithm:ScaledPG",
    experiments={"basin": ("scaled_pg",)},
)
