"""The comparison arms, shared by the tabular engine and the RLlib algorithm.

An arm says which correction terms are on and whether the correction is cooled
down after the handoff time.  ``pg`` (tabular) and ``ippo`` (RLlib) name the
same uncorrected arm.  This module must not import Ray or torch.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Sequence


@dataclasses.dataclass(frozen=True)
class Arm:
    """Which Meta-MAPG terms an arm uses.

    Attributes:
        name: Canonical name.
        own: Own-learning correction on.
        peer: Peer-learning correction on.
        cooldown: Correction follows the lambda schedule (else constant).
    """

    name: str
    own: bool
    peer: bool
    cooldown: bool = False

    @property
    def corrected(self) -> bool:
        return self.own or self.peer


ARMS: Dict[str, Arm] = {
    "pg": Arm("pg", own=False, peer=False),
    "own_only": Arm("own_only", own=True, peer=False),
    "peer_only": Arm("peer_only", own=False, peer=True),
    "meta_mapg": Arm("meta_mapg", own=True, peer=True),
    "handoff": Arm("handoff", own=True, peer=True, cooldown=True),
}
ALIASES = {"ippo": "pg", "full": "meta_mapg"}
RLLIB_ARMS = ("ippo", "own_only", "peer_only", "meta_mapg", "handoff")  # names RLlib users see


class ArmError(ValueError):
    """Raised for an unknown arm name."""


def get_arm(name: str) -> Arm:
    key = ALIASES.get(name, name)
    if key not in ARMS:
        raise ArmError(f"arm={name!r} is unknown; choose one of "
                       f"{', '.join(list(ARMS) + sorted(ALIASES))}.")
    return ARMS[key]


def rllib_arm_name(name: str) -> str:
    """The RLlib spelling of an arm or alias (``pg`` -> ``ippo``, ``full`` -> ``meta_mapg``)."""
    arm = get_arm(name)
    return "ippo" if arm.name == "pg" else arm.name


def parse_arms(names: Sequence[str]) -> List[Arm]:
    """Validates a list of arm names (duplicates refused), keeping the order."""
    arms = [get_arm(n) for n in names]
    seen = [a.name for a in arms]
    dup = sorted({n for n in seen if seen.count(n) > 1})
    if dup:
        raise ArmError(f"arms: {dup} listed more than once.")
    if not arms:
        raise ArmError("arms: give at least one arm.")
    return arms
