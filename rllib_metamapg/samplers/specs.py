"""The samplers' registry entries (Ray- and torch-free).

``props`` and ``ma_props`` run in the tabular engine (:mod:`.behaviour`, with the
independent-PPO learner of :mod:`.learning`) and in RLlib's env runner
(:mod:`.env_runner`), where they compose with every on-policy method's arms.
"""

from rllib_metamapg.registry import SamplerSpec

_RLLIB = dict(rllib="rllib_metamapg.samplers.env_runner:install",
              rllib_check="rllib_metamapg.samplers.rllib_check:check_behaviour_config",
              tabular="rllib_metamapg.samplers.batch:batch_sampler")

PROPS = SamplerSpec("props", "each agent samples from its own behaviour policy, adapted "
                    "toward its under-sampled actions (PROPS per agent)", **_RLLIB)
MA_PROPS = SamplerSpec("ma_props", "one centralized behaviour policy over joint actions, "
                       "adapted toward under-sampled joint actions (MA-PROPS)", **_RLLIB)
