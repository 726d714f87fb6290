"""RLlib environments, registered with Tune under short names on import.

Every env here is a ``MultiAgentEnv`` with ``possible_agents`` in a fixed order,
which is what the RLlib base's default wiring of every method (one module per agent,
see :func:`one_module_per_agent`, installed by ``PluginAlgorithm``) needs; a YAML
therefore needs no Python to run one.
"""

from ray.tune.registry import register_env

from rllib_metamapg.envs.matrix_game import MatrixGameEnv, one_module_per_agent

MATRIX_GAMES = ("stag_hunt", "ipd", "pd", "chicken", "matching_pennies", "climbing",
                "climbing_modified", "penalty", *(f"no_conflict_{k}" for k in range(1, 22)))


def _pettingzoo_ipd(cfg):
    from rllib_metamapg.envs.pettingzoo_ipd import make_pettingzoo_ipd

    return make_pettingzoo_ipd(cfg)


def _mpe(name):
    def create(cfg):
        from rllib_metamapg.envs.mpe import make_mpe

        return make_mpe(name, cfg)

    return create


def _overcooked(layout):
    def create(cfg):
        from rllib_metamapg.envs.overcooked import OvercookedEnv

        return OvercookedEnv({"layout": layout, **dict(cfg)})

    return create


def _meltingpot(name):
    def create(cfg):
        from rllib_metamapg.envs.meltingpot import make_meltingpot

        return make_meltingpot(name, cfg)

    return create


def _lbforaging(**settings):
    def create(cfg):
        from rllib_metamapg.envs.lbforaging import LevelBasedForagingEnv

        return LevelBasedForagingEnv({**settings, **dict(cfg)})

    return create


# Level-Based Foraging as the package registers its "-coop" ids: a 5x5 board that
# trains on 2 cores in minutes.  Other boards: the same env with env_config
# {"field_size": 8, "max_num_food": 2} (the common 8x8 benchmark).
LBF_ENVS = {"lbforaging_5x5_2p_1f_coop": {"field_size": 5, "players": 2, "max_num_food": 1}}


def _named_matrix_game(name):
    """The built-in game ``name``; ``env_config.game`` may replace its payoffs by
    a game with as many players (``matrix_game`` takes any game)."""
    def create(cfg):
        env = MatrixGameEnv({"game": name, **dict(cfg)})
        expected = len(MatrixGameEnv({"game": name}).possible_agents)
        if len(env.possible_agents) != expected:
            raise ValueError(
                f"env={name!r} is a {expected}-player game but env_config.game has "
                f"{len(env.possible_agents)} players; use env='matrix_game' for a game of "
                "your own.")
        return env

    return create


def _matrix_game(cfg):
    if "game" not in dict(cfg):
        raise ValueError("env='matrix_game' needs env_config.game: a built-in game name or "
                         "a payoff spec such as {'payoffs': [[4, 0], [3, 2]]}.")
    return MatrixGameEnv(dict(cfg))


MPE_ENVS = ("mpe_simple_spread", "mpe_simple_reference", "mpe_simple_speaker_listener")
CREATORS = {
    **{name: _named_matrix_game(name) for name in MATRIX_GAMES},
    "matrix_game": _matrix_game,
    "pettingzoo_ipd": _pettingzoo_ipd,
    **{name: _mpe(name) for name in MPE_ENVS},
    "overcooked_forced_coordination": _overcooked("forced_coordination"),
    "meltingpot_pd_in_the_matrix": _meltingpot("meltingpot_pd_in_the_matrix"),
    **{name: _lbforaging(**settings) for name, settings in LBF_ENVS.items()},
}
ENV_NAMES = tuple(CREATORS)


def _rounds(cfg):
    try:  # cheap and side-effect free; a bad config is reported when the env is built
        return MatrixGameEnv(dict(cfg)).rounds
    except Exception:
        return None


# Every episode's length where all episodes of the env have the same one (None:
# they end at different times), from its env_config.  The corrections' checks use
# it to tell whether sampling cuts episodes (rllib_metamapg/episode_chunks.py).
EPISODE_LENGTHS = {
    **{name: (lambda cfg, name=name: _rounds({"game": name, **dict(cfg)}))
       for name in MATRIX_GAMES},
    "matrix_game": _rounds,
    "pettingzoo_ipd": lambda cfg: dict(cfg).get("rounds", 12),
    # mpe2's tasks here never terminate early: every episode is max_cycles long.
    **{name: (lambda cfg: dict(cfg).get("max_cycles", 25)) for name in MPE_ENVS},
    "overcooked_forced_coordination": lambda cfg: dict(cfg).get("horizon", 400),
    "meltingpot_pd_in_the_matrix": lambda cfg: None,
    # An LBF episode ends early once every food is loaded.
    **{name: (lambda cfg: None) for name in LBF_ENVS},
}


def fixed_episode_length(env, env_config=None):
    """The length of every episode of registered env ``env`` under ``env_config``,
    or ``None`` when its episodes differ in length or the env is not ours."""
    lengths = EPISODE_LENGTHS.get(env) if isinstance(env, str) else None
    length = None if lengths is None else lengths(env_config or {})
    return length if isinstance(length, int) and not isinstance(length, bool) else None


def register_envs() -> None:
    """(Re-)registers every environment with Tune.

    Import does this once; Tune pushes registrations to the Ray session that is
    running (or starts next) only, so call it again after a ``ray.shutdown()`` /
    ``ray.init()`` cycle.  Building any of our algorithms calls it for you
    (``PluginAlgorithm``); ``validate()`` has no side effects.
    """
    for name, creator in CREATORS.items():
        register_env(name, creator)


register_envs()

__all__ = ["ENV_NAMES", "EPISODE_LENGTHS", "LBF_ENVS", "MatrixGameEnv", "MATRIX_GAMES",
           "fixed_episode_length", "one_module_per_agent", "register_envs"]
