"""RLlib's default PPO module with a critic over :data:`CRITIC_OBS` instead of the own
observation.

The module is built exactly as ``ippo``'s (same layers, same draws from torch's
seeded RNG, so seed s gives every arm the same actor and value head), and then, for a
joint critic input, its critic encoder is rebuilt for the wider input from a
generator of its own (``torch.random.fork_rng``): the global RNG is left where
``ippo``'s build leaves it, so the next agent's module is ``ippo``'s too.  Env
runners build the actor only (``inference_only``), as for PPO.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional

import torch
from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import (
    DefaultPPOTorchRLModule)
from ray.rllib.core.columns import Columns
from ray.rllib.core.models.base import ENCODER_OUT
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.utils.annotations import override

from rllib_metamapg.mappo.critic_observations import CRITIC_OBS

# model_config key the config fills: {"input", "dim", "seed"} (see MAPPOConfig).
CRITIC_KEY = "mappo_critic"
# Offsets the critic's own generator from the run's seed, so the critic's first
# draws are not the actor's.
_CRITIC_SEED_OFFSET = 0x6D617070  # "mapp"


class MAPPOTorchRLModule(DefaultPPOTorchRLModule):
    """Actor as PPO's; critic encoder on the centralized input :data:`CRITIC_OBS`."""

    # The logits read these layers only (``critic_lr`` splits the optimizers by them).
    actor_param_prefixes = ("encoder.actor_encoder.", "pi.")

    @override(DefaultPPOTorchRLModule)
    def setup(self):
        super().setup()
        spec = (self.model_config or {}).get(CRITIC_KEY) or {}
        if getattr(self.encoder, "critic_encoder", None) is None:
            return  # inference only (env runners): the actor alone
        if spec.get("input", "joint") == "own":
            return  # ippo's critic, fed the own observation through CRITIC_OBS
        base = self.catalog.actor_critic_encoder_config.base_encoder_config
        wide = dataclasses.replace(base, input_dims=[int(spec["dim"])])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(spec.get("seed") or 0) + _CRITIC_SEED_OFFSET)
            self.encoder.critic_encoder = wide.build(framework="torch")

    def _critic_embeddings(self, batch: Dict[str, Any]):
        if CRITIC_OBS not in batch:
            raise KeyError(f"MAPPO's critic reads the batch column {CRITIC_OBS!r}, which "
                           "the learner connector AddCriticObservations adds; it is missing "
                           "(a custom learner pipeline without it?).")
        return self.encoder.critic_encoder({Columns.OBS: batch[CRITIC_OBS]})[ENCODER_OUT]

    @override(RLModule)
    def _forward(self, batch: Dict[str, Any], **kwargs) -> Dict[str, Any]:
        actor = self.encoder.actor_encoder(batch)[ENCODER_OUT]
        return {Columns.ACTION_DIST_INPUTS: self.pi(actor)}

    @override(RLModule)
    def _forward_train(self, batch: Dict[str, Any], **kwargs) -> Dict[str, Any]:
        out = self._forward(batch)
        out[Columns.EMBEDDINGS] = self._critic_embeddings(batch)
        return out

    @override(ValueFunctionAPI)
    def compute_values(self, batch: Dict[str, Any], embeddings: Optional[Any] = None):
        if embeddings is None:
            embeddings = self._critic_embeddings(batch)
        return self.vf(embeddings).squeeze(-1)
