"""RLlib environments, registered with Tune under short names on import."""

from ray.tune.registry import register_env

from rllib_metamapg.envs.matrix_game import MatrixGameEnv, one_module_per_agent

MATRIX_GAMES = ("stag_hunt", "ipd", "pd", "chicken", "matching_pennies", "climbing",
                "penalty")


def register_envs() -> None:
    """(Re-)registers every environment with Tune.

    Import does this once; Tune pushes registrations to the Ray session that is
    running (or starts next) only, so call it again after a ``ray.shutdown()`` /
    ``ray.init()`` cycle.  ``MetaMAPGConfig.validate()`` calls it for you.
    """
    for name in MATRIX_GAMES:
        register_env(name, lambda cfg, _n=name: MatrixGameEnv({"game": _n, **dict(cfg)}))


register_envs()

__all__ = ["MatrixGameEnv", "MATRIX_GAMES", "one_module_per_agent", "register_envs"]
