"""RLlib environments, registered with Tune under short names on import."""

from ray.tune.registry import register_env

from rllib_metamapg.envs.matrix_game import MatrixGameEnv, one_module_per_agent

MATRIX_GAMES = ("stag_hunt", "ipd", "pd", "chicken", "matching_pennies", "climbing",
                "penalty")


def _register():
    for name in MATRIX_GAMES:
        register_env(name, lambda cfg, _n=name: MatrixGameEnv({"game": _n, **dict(cfg)}))


_register()

__all__ = ["MatrixGameEnv", "MATRIX_GAMES", "one_module_per_agent"]
