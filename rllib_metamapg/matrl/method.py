"""MATRL's entry in the method registry: its arms and where its two engines live.

Ray- and torch-free.  An arm of MATRL says where the meta-game's answer comes
from and whether the best response runs:

* ``matrl``: the meta-game's equilibrium ``rho`` (P(current) per agent), the
  mixture ``pi_bar = rho pi + (1 - rho) pi_hat``, then a best response to it;
* ``matrl_no_br``: the paper's "MATRL w/o BR" -- the policy becomes the mixture;
* ``il_pp``: ``rho = 0`` for every agent without solving the meta-game -- a best
  response to the peers' predicted policies (independent learners with policy
  prediction, the paper's second ablation).

``rho = 1`` for every agent is plain independent learning; no arm is needed for
it (Meta-MAPG's ``ippo`` is that arm, and the tests check the identity).
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Union

from rllib_metamapg.matrl.metrics import TRUST_STEP_NORM
from rllib_metamapg.registry import ArmSpec, MethodSpec, RegistryError, get_arm

NAME = "matrl"


@dataclasses.dataclass(frozen=True)
class MATRLArm:
    """What one MATRL arm does.

    Attributes:
        name: Arm name.
        rho: Fixed P(current) for every agent, or None to solve the meta-game.
        best_response: Best-respond to the mixture (else move to it).
    """

    name: str
    rho: Optional[float]
    best_response: bool


def _arm(name, rho, best_response, help):
    return ArmSpec(name, options={"rho": rho, "best_response": best_response},
                   rllib={"arm": name}, help=help, reports=(TRUST_STEP_NORM,))


METHOD = MethodSpec(
    name=NAME,
    help="trust-payoff step, current-vs-predicted meta-game, best response to its "
         "equilibrium (MATRL)",
    arms=(
        _arm("matrl", None, True, "MATRL: meta-game equilibrium, then a best response"),
        _arm("matrl_no_br", None, False, "MATRL without the best response: move to the "
             "meta-game's mixture"),
        _arm("il_pp", 0.0, True, "best response to the peers' predicted policies "
             "(rho = 0; IL with policy prediction)"),
    ),
    tabular="rllib_metamapg.matrl.tabular_update:MATRLTabular",
    algorithm="rllib_metamapg.matrl.matrl:MATRL",
    settings="rllib_metamapg.matrl.settings:MATRLSettings",
    # MATRL's Table 3 best-response settings; the PPO settings stay the env's shared
    # ones so every arm of a paired sweep trains alike (docs/matrl.md lists the
    # rest of Table 3 where it differs).
    rllib_defaults={"br_iters": 5, "br_clip": 0.1},
    experiments={
        "basin": ("matrl", "matrl_no_br", "il_pp"),
        "ablation": ("matrl", "matrl_no_br", "il_pp"),
        "compare": ("matrl", "matrl_no_br", "il_pp", "matrl+ma_props"),
    },
)


def matrl_arm(arm: Union[str, ArmSpec]) -> MATRLArm:
    """The settings of a MATRL arm (by name or spec)."""
    spec = get_arm(arm) if isinstance(arm, str) else arm
    if spec.method != NAME:
        raise RegistryError(f"arm={spec.name!r} belongs to method {spec.method!r}, not "
                            f"{NAME!r}; MATRLConfig takes the arms of {NAME!r} only: "
                            f"{[a.name for a in METHOD.arms]}.")
    rho = spec.options["rho"]
    return MATRLArm(spec.name, None if rho is None else float(rho),
                    bool(spec.options["best_response"]))
