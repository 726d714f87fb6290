"""Meta-MAPG's entry in the method registry: its arms and where its two engines live.

Ray-free (the tabular engine and the CLIs read it without starting Ray).  An arm
of Meta-MAPG is a set of switches: which correction terms are on and whether
lambda cools down after the handoff.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Union

from rllib_metamapg.metamapg.metrics import CORRECTION_NORM
from rllib_metamapg.registry import ArmSpec, MethodSpec, RegistryError, get_arm

NAME = "meta_mapg"


@dataclasses.dataclass(frozen=True)
class Switches:
    """Which Meta-MAPG terms an arm uses.

    Attributes:
        name: Arm name.
        own: Own-learning correction on.
        peer: Peer-learning correction on.
        cooldown: lambda follows the shape-then-cool schedule (else constant).
        form: The correction form this arm always uses (``None``: the run's
            ``correction_form``).
    """

    name: str
    own: bool
    peer: bool
    cooldown: bool = False
    form: Optional[str] = None

    @property
    def corrected(self) -> bool:
        return self.own or self.peer


def _arm(name, own, peer, cooldown=False, aliases=(), help="", form=None,
         engines=("tabular", "rllib")):
    return ArmSpec(name, options={"own": own, "peer": peer, "cooldown": cooldown,
                                  "form": form},
                   rllib={"arm": name}, aliases=aliases, help=help, handoff=cooldown,
                   engines=engines, reports=(CORRECTION_NORM,) if own or peer else ())


METHOD = MethodSpec(
    name=NAME,
    help="policy gradient plus lambda * (own + peer) look-ahead corrections (Meta-MAPG)",
    arms=(
        _arm("ippo", False, False, aliases=("pg",),
             help="plain independent PG (PPO on RLlib): the reference arm"),
        _arm("own_only", True, False, help="own-learning correction only"),
        _arm("peer_only", False, True, help="peer-learning correction only"),
        _arm("meta_mapg", True, True, aliases=("full",), help="own + peer corrections"),
        _arm("handoff", True, True, cooldown=True,
             help="meta_mapg until T_warm, then cooled back to plain PG"),
        # LOLA (Foerster et al. 2018) is PG plus the peer term in the look-ahead form,
        # which only the tabular engine computes (exact, or LOLA-DiCE when sampled).
        _arm("lola", False, True, form="lola", engines=("tabular",),
             help="LOLA: PG plus the peer term in the lola form (tabular engine)"),
    ),
    tabular="rllib_metamapg.metamapg.tabular_update:MetaMAPGTabular",
    algorithm="rllib_metamapg.metamapg.metamapg:MetaMAPG",
    settings="rllib_metamapg.metamapg.settings:MetaMAPGSettings",
    rllib_defaults={"inner_lr": 0.1, "correction_clip": 1.0},
    reference="ippo",
    # The paper's tabular experiments (App. D) and the arms each shows.
    experiments={
        "basin": ("ippo", "own_only", "peer_only", "meta_mapg", "handoff"),
        "ablation": ("ippo", "own_only", "peer_only", "meta_mapg"),
        "cooldown": ("ippo", "meta_mapg", "handoff"),
        "restart": ("ippo", "own_only", "peer_only", "meta_mapg"),
        "alignment": ("meta_mapg",),
        "atlas": ("peer_only",),  # whose basin gain the alignment atlas measures
        "paths": ("peer_only", "meta_mapg"),  # the corrections along their trajectories
        "demo": ("ippo", "own_only", "peer_only", "meta_mapg", "handoff"),
        # The comparison: every arm, and MA-PROPS's batches with PG and the peer term.
        "compare": ("ippo", "own_only", "peer_only", "meta_mapg", "handoff",
                    "ippo+ma_props", "peer_only+ma_props"),
    },
    # The paper's cooldown ablation (Sec. 5; Stag Hunt, 80 seeds, 260 steps, batch 256,
    # shape-then-cool from step 100): PG, constant Meta-MAPG, shape-then-cool.
    paper_results={"cooldown": {"ippo": 0.3125, "meta_mapg": 0.4125, "handoff": 0.425}},
)


def switches(arm: Union[str, ArmSpec]) -> Switches:
    """The switches of a Meta-MAPG arm (by name, alias or spec)."""
    spec = get_arm(arm) if isinstance(arm, str) else arm
    if spec.method != NAME:
        raise RegistryError(f"arm={spec.name!r} belongs to method {spec.method!r}, not "
                            f"{NAME!r}; MetaMAPGConfig takes the arms of {NAME!r} only.")
    o = spec.options
    return Switches(spec.name, bool(o["own"]), bool(o["peer"]), bool(o.get("cooldown")),
                    o.get("form"))
