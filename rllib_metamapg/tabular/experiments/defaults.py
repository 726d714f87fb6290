"""Each tabular experiment's defaults over the paper's settings (light: the CLI builds its
parser from these without importing the experiments, or torch)."""

from rllib_metamapg.registry import experiment_arms

BASIN = dict(game="stag_hunt", payoff=None, arms=lambda: experiment_arms("basin"),
             steps=140, batch_size=192, grid=21, grid_low=0.05, grid_high=0.95)

ABLATION = dict(games=["stag_hunt", "ipd"], payoff=None,
                arms=lambda: experiment_arms("ablation"), steps=260,
                batch_size=384, seeds=100, init_std=1.35)

COOLDOWN = dict(game="stag_hunt", payoff=None, arms=lambda: experiment_arms("cooldown"),
                steps=260, batch_size=256, seeds=80, init_std=1.35,
                lambda_schedule="anneal", handoff_steps=100.0, anneal_scale=30.0,
                anneal_power=1.0, temperature=0.3, settle_steps=3000)

ALIGNMENT = dict(game="stag_hunt", payoff=None, arms=lambda: experiment_arms("alignment"),
                 steps=140, batch_size=192, grid=21, grid_low=0.05, grid_high=0.95,
                 eq_temperature=0.2, lambdas=[0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5],
                 radius=0.5, lipschitz_samples=200, target_prob=0.95)
