"""MATRL's own tabular setting (Ray- and torch-free; composed into
``LearningSettings`` through the registry)."""

from __future__ import annotations

import dataclasses

from rllib_metamapg.forms import META_CHOICES
from rllib_metamapg.tabular.settings import setting


@dataclasses.dataclass(frozen=True)
class MATRLSettings:
    meta_choice: str = setting(
        "last", "MATRL: which equilibrium of the meta-game when it has several (last = "
        "the public code's, the mixed one when it exists; random = the paper's wording)",
        choices=META_CHOICES)
