"""The samplers' registry entries (Ray- and torch-free).

``props`` and ``ma_props`` run in the tabular engine (:mod:`.behaviour`); their
RLlib env-runner pieces are not built yet, so ``arm_config(..., sampler=...)``
refuses them by name.
"""

from rllib_metamapg.registry import SamplerSpec

PROPS = SamplerSpec("props", "each agent samples from its own behaviour policy, adapted "
                    "toward its under-sampled actions (PROPS per agent)",
                    engines=("tabular",))
MA_PROPS = SamplerSpec("ma_props", "one centralized behaviour policy over joint actions, "
                       "adapted toward under-sampled joint actions (MA-PROPS)",
                       engines=("tabular",))
