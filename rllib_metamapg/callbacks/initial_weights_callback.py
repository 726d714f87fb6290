"""``InitialWeightsCallback``: a digest of every module's initial weights, per result.

Paired seeds mean seed s starts every arm from the same weights.  Sweeps
report this digest so the pairing can be checked on the results themselves
rather than trusted.
"""

from __future__ import annotations

import hashlib
from typing import Any, Dict, Mapping

import numpy as np
from ray.rllib.callbacks.callbacks import RLlibCallback

from rllib_metamapg.rllib_base.torch.module_params import ACTOR_PREFIXES

RESULT_KEY = "metamapg_init"


def weights_digest(weights: Mapping[str, Mapping[str, Any]]) -> str:
    """SHA-256 over ``{module_id: {param_name: array}}``, independent of dict order."""
    h = hashlib.sha256()
    for module_id in sorted(weights):
        for name in sorted(weights[module_id]):
            array = np.ascontiguousarray(np.asarray(weights[module_id][name]))
            h.update(f"{module_id}/{name}:{array.dtype.str}:{array.shape};".encode())
            h.update(array.tobytes())
    return h.hexdigest()


def actor_weights(weights: Mapping[str, Mapping[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """Each module's actor parameters (those the action logits read, in RLlib's default
    PPO layout), or all of a module's parameters when it has no such layout."""
    out = {}
    for module_id, params in weights.items():
        actor = {n: v for n, v in params.items() if n.startswith(ACTOR_PREFIXES)}
        out[module_id] = actor or dict(params)
    return out


class InitialWeightsCallback(RLlibCallback):
    """Adds ``result["metamapg_init"] = {"weights_sha256", "actor_sha256", "seed"}`` to
    every result.  ``actor_sha256`` covers the actors only: arms whose critics differ
    (MAPPO's reads every agent's observation) are paired by their actors.

    The digest is taken in ``on_algorithm_init``, before Tune restores a
    checkpoint into the algorithm, so a resumed trial reports the digest of
    its fresh initialisation too.
    """

    def __init__(self):
        super().__init__()
        self._info: Dict[str, Any] = {}

    def on_algorithm_init(self, *, algorithm, metrics_logger=None, **kwargs) -> None:
        weights = algorithm.learner_group.get_weights()
        self._info = {"weights_sha256": weights_digest(weights),
                      "actor_sha256": weights_digest(actor_weights(weights)),
                      "seed": algorithm.config.seed}

    def on_train_result(self, *, algorithm, metrics_logger=None, result: dict,
                        **kwargs) -> None:
        result[RESULT_KEY] = dict(self._info)
