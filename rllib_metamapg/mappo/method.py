"""MAPPO's registry entry: one arm, RLlib only."""

from rllib_metamapg.registry import ArmSpec, MethodSpec

NAME = "mappo"

METHOD = MethodSpec(
    name=NAME,
    help="MAPPO: each agent's PPO actor with a centralized critic over every agent's "
         "observation (Yu et al. 2022)",
    arms=(ArmSpec("mappo", rllib={"critic_input": "joint"}, engines=("rllib",),
                  help="PPO actors, one critic input holding every agent's observation"),),
    # The tabular engine computes exact values or sampled returns: no critic to widen.
    tabular="rllib_metamapg.mappo.tabular_update:no_tabular_update",
    algorithm="rllib_metamapg.mappo.mappo:MAPPO",
)
