"""Each tabular experiment's defaults over the paper's settings (light: the CLI builds its
parser from these without importing the experiments, or torch)."""

from rllib_metamapg.registry import experiment_arms

BASIN = dict(game="stag_hunt", payoff=None, arms=lambda: experiment_arms("basin"),
             steps=140, batch_size=192, grid=21, grid_low=0.05, grid_high=0.95)

ABLATION = dict(games=["stag_hunt", "ipd"], payoff=None,
                arms=lambda: experiment_arms("ablation"), steps=260,
                batch_size=384, seeds=100, init_std=1.35, trace=False)

# Alignment along trajectories: the ablation's runs (paired starts, sampled mode).
PATHS = dict(games=["stag_hunt", "ipd"], arms=lambda: experiment_arms("paths"), steps=260,
             batch_size=384, seeds=100, init_std=1.35)

COOLDOWN = dict(game="stag_hunt", payoff=None, arms=lambda: experiment_arms("cooldown"),
                steps=260, batch_size=256, seeds=80, init_std=1.35,
                lambda_schedule="anneal", handoff_steps=100.0, anneal_scale=30.0,
                anneal_power=1.0, temperature=0.3, settle_steps=3000)

ALIGNMENT = dict(game="stag_hunt", payoff=None, arms=lambda: experiment_arms("alignment"),
                 steps=140, batch_size=192, grid=21, grid_low=0.05, grid_high=0.95,
                 eq_temperature=0.2, lambdas=[0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5],
                 radius=0.5, lipschitz_samples=200, target_prob=0.95)

# Batch 32: the small-batch regime where sampling error matters (MA-PROPS's claim) and
# compositions stay affordable (each draw runs a behaviour update); seeds and random
# games sized so the full suite runs in about 4 minutes on 2 cores.
COMPARE = dict(families=lambda: list(FAMILY_NAMES), arms=lambda: experiment_arms("compare"),
               steps=140, batch_size=32, seeds=24, init_std=1.35, grid=11, grid_low=0.05,
               grid_high=0.95, random_games=6, own_setting_seeds=24, quick=False)
# The comparison's families (descriptions in tabular_experiments/suite.py).
FAMILY_NAMES = ("stag_hunt", "stag_hunt_basin", "ipd", "no_conflict", "climbing", "penalty",
                "chicken", "random_coordination", "random_anticoordination", "random_cyclic")

# `metamapg tabular sweep --param NAME --values ...`: the ablation's runs per value.
SWEEP = dict(game="stag_hunt", payoff=None, arms=lambda: experiment_arms("ablation"),
             steps=140, batch_size=192, seeds=40, init_std=1.35, param=None, values=None,
             mirror=False)

# `metamapg tabular flow`: the basin map's settings, arrows on an 11 x 11 grid and
# trajectories from 5 x 5 starts (the prototype's trajectory grid).
FLOW = dict(BASIN, arrows=11, starts=5)

# `metamapg tabular restart`: the prototype's restart experiment (uniform inits on
# [-3, 3], up to 12 restarts of 120 steps each, batch 384).
RESTART = dict(games=["stag_hunt", "ipd"], payoff=None, arms=lambda: experiment_arms("restart"),
               steps=120, batch_size=384, seeds=100, max_restarts=12, init_range=3.0)
