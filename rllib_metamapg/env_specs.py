"""What the sweeps and reports need to know about each registered environment (Ray-free).

``tau`` is the learner threshold on the greedy evaluation return (RLlib's
``episode_return_mean``: the sum over agents of one episode's rewards).  A seed
whose final greedy return reaches ``tau`` counts as a learner.  ``steps`` and
``t_warm`` are the full-budget env steps and the ``handoff`` arm's T_warm that
the tuned examples use (the paper's Table 2 where it has the env).

A game whose payoff sums cannot tell its target from other outcomes (Chicken) is
scored instead by ``on_target``: the fraction of greedy evaluation rounds whose
joint action is one of the game's targets (``MatrixGameEnv``'s info, logged by
``OnTargetCallback``), with ``tau = 1``: every greedy round on a target.  The
one-shot games of the method comparison (:data:`COMPARISON_GAMES`) are scored so;
their settings live in the comparison study's folders, not in ``tuned_examples``.
"""

from __future__ import annotations

from dataclasses import dataclass
import importlib.util
from typing import Dict, Optional


@dataclass(frozen=True)
class EnvSpec:
    """Sweep/report metadata of one registered environment.

    Attributes:
        name: Registered env name (also the ``tuned_examples/<name>/`` folder).
        tau: Learner threshold on the greedy evaluation return, or ``None``.
        steps: Full training budget in env steps.
        t_warm: Env steps before the ``handoff`` arm cools down.
        returns_nonnegative: Whether every reward is >= 0 (then ``tau = 0``
            would count any policy as a learner).
        note: Where ``tau`` comes from.
        requires: Top-level module the env imports that is not a core
            dependency, or ``None``.
        install: How to install ``requires``.
        score: What ``tau`` thresholds: ``"return"`` (the greedy evaluation's
            ``episode_return_mean``) or ``"on_target"`` (its ``on_target_rate``).
        tuned_examples: Whether ``tuned_examples/<name>/`` holds this env's
            per-arm files (``False``: a study folder holds its settings).
    """

    name: str
    tau: Optional[float]
    steps: int
    t_warm: int
    returns_nonnegative: bool
    note: str = ""
    requires: Optional[str] = None
    install: str = ""
    score: str = "return"
    tuned_examples: bool = True

    def __post_init__(self):
        if self.score not in SCORES:
            raise ValueError(f"EnvSpec {self.name!r}: score={self.score!r}; choose one of "
                             f"{sorted(SCORES)}.")

    @property
    def metric(self) -> str:
        """The result key ``tau`` is compared with."""
        return SCORES[self.score]

    def missing(self) -> Optional[str]:
        """Why the env cannot be built here (a missing module and its install), or ``None``."""
        if self.requires is None or importlib.util.find_spec(self.requires) is not None:
            return None
        return (f"env {self.name!r} needs the {self.requires!r} package, which is not "
                f"installed: {self.install}")


# What a sweep scores each env by: the greedy evaluation's result key.
SCORES = {"return": "evaluation/env_runners/episode_return_mean",
          "on_target": "evaluation/env_runners/on_target_rate"}

# The one-shot games of the method comparison, as RLlib envs of their own name
# (their targets and payoffs are the tabular engine's, rllib_metamapg/tabular/games.py).
COMPARISON_GAMES = ("chicken", "climbing", "climbing_modified", "penalty",
                    *(f"no_conflict_{k}" for k in range(1, 22)))


def _comparison_game(name: str) -> EnvSpec:
    # One round per episode: 20 batches of 256 and T_warm at half, as the comparison
    # study runs them (studies/compare_rllib, where its pilot is described).
    return EnvSpec(name, 1.0, 5_120, 2_560, False,
                   "tau = 1: every greedy evaluation round plays a target joint action of "
                   "the game (its `targets`, as the tabular comparison's success).",
                   score="on_target", tuned_examples=False)


# How to install each optional package; the env modules quote these too.
MPE_INSTALL = "pip install -c constraints.txt 'rllib-metamapg[mpe]'"
OVERCOOKED_INSTALL = "`make overcooked` (see docs/sweeps.md, 'Overcooked')"
MELTINGPOT_INSTALL = "`make meltingpot` (see docs/sweeps.md, 'Melting Pot')"
LBF_INSTALL = "pip install -c constraints.txt 'rllib-metamapg[lbf]'"
_MPE = ("mpe2", MPE_INSTALL)
_OVERCOOKED = ("overcooked", OVERCOOKED_INSTALL)
_MELTINGPOT = ("meltingpot", MELTINGPOT_INSTALL)
_LBF = ("lbforaging", LBF_INSTALL)

ENV_SPECS: Dict[str, EnvSpec] = {
    spec.name: spec for spec in (
        # Joint payoffs: (stag, stag) 8, mixed 3, (hare, hare) 4 -> only full
        # coordination on stag clears 6.
        EnvSpec("stag_hunt", 6.0, 100_000, 30_000, True,
                "tau = 6: only (stag, stag), joint return 8, clears it; hare-hare gives 4."),
        # 12 rounds of PD [[3,0],[5,1]]: all-C 72, all-D 24, uniform random 54.
        EnvSpec("ipd", 60.0, 100_000, 30_000, True,
                "tau = 60 of 72 (mutual cooperation); uniform random play averages 54."),
        # The same 12-round PD through PettingZoo; Table 2's budget for the
        # Melting Pot stand-in.  The paper's tau = 0.5 was for its own reward scale.
        EnvSpec("pettingzoo_ipd", 60.0, 1_000_000, 400_000, True,
                "tau = 60 of 72 (mutual cooperation); uniform random play averages 54."),
        # mpe2, 25 steps per episode.  The paper's tau is per agent (its App. F
        # returns are per-agent means); ours scores the sum over agents, so
        # tau = paper tau x agents.
        EnvSpec("mpe_simple_spread", -75.0, 750_000, 200_000, False,
                "tau = 3 x -25 (paper, per agent); uniform random play sums to about -82.",
                *_MPE),
        EnvSpec("mpe_simple_reference", -44.0, 750_000, 200_000, False,
                "tau = 2 x -22 (paper, per agent); uniform random play sums to about -58.",
                *_MPE),
        EnvSpec("mpe_simple_speaker_listener", -20.0, 750_000, 200_000, False,
                "tau = 2 x -10 (paper, per agent); uniform random play sums to about -84.",
                *_MPE),
        # Horizon 400.  Like MPE, the paper's tau = 3.0 is per agent (its
        # 0.75-step returns are half of one weighted onion-in-pot reward).
        EnvSpec("overcooked_forced_coordination", 6.0, 1_000_000, 500_000, True,
                "tau = 2 x 3.0 (paper, per agent); uniform random play sums to about 2.",
                *_OVERCOOKED),
        # Table 2's budget.  No tau: the paper's 0.5 belongs to its PettingZoo
        # fallback, and nothing here says what return a cooperating pair
        # reaches (the reference bots need the assets we do not install).
        EnvSpec("meltingpot_pd_in_the_matrix", None, 1_000_000, 400_000, False,
                "no tau yet: uniform random play sums to 5.7 on average (95th "
                "percentile 13.5, 30 episodes); pass `metamapg report --tau` above it.",
                *_MELTINGPOT),
        # Level-Based Foraging: one episode's rewards over all agents sum to 1 when
        # every food is loaded (the package normalises them).  Scored on sampled, not
        # greedy, evaluation episodes (the tuned example's notes say why).
        EnvSpec("lbforaging_5x5_2p_1f_coop", 0.9, 150_000, 75_000, True,
                "tau = 0.9: on average 90 % of the food loaded over the sampled evaluation "
                "episodes (all of it sums to 1); uniform random play averages 0.03 (500 "
                "episodes).", *_LBF),
        *(_comparison_game(name) for name in COMPARISON_GAMES),
    )
}


def get_env_spec(name: str) -> EnvSpec:
    """The ``EnvSpec`` of a registered env; a clear error for unknown names."""
    try:
        return ENV_SPECS[name]
    except KeyError:
        raise ValueError(f"env={name!r} has no sweep settings; choose one of "
                         f"{sorted(ENV_SPECS)}.") from None


def check_installed(name: str) -> None:
    """Raises ``ValueError`` (with the install command) if env ``name`` cannot be built here."""
    spec = ENV_SPECS.get(name)
    reason = spec.missing() if spec is not None else None
    if reason:
        raise ValueError(reason)
