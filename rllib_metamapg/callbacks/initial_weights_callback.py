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


class InitialWeightsCallback(RLlibCallback):
    """Adds ``result["metamapg_init"] = {"weights_sha256", "seed"}`` to every result.

    The digest is taken in ``on_algorithm_init``, before Tune restores a
    checkpoint into the algorithm, so a resumed trial reports the digest of
    its fresh initialisation too.
    """

    def __init__(self):
        super().__init__()
        self._info: Dict[str, Any] = {}

    def on_algorithm_init(self, *, algorithm, metrics_logger=None, **kwargs) -> None:
        self._info = {"weights_sha256": weights_digest(algorithm.learner_group.get_weights()),
                      "seed": algorithm.config.seed}

    def on_train_result(self, *, algorithm, metrics_logger=None, result: dict,
                        **kwargs) -> None:
        result[RESULT_KEY] = dict(self._info)
