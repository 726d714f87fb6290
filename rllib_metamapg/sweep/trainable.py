"""``PairedArms``: the trainable of a sweep whose arms run under different algorithm classes.

Tune runs one trainable class per experiment; a paired comparison of, say,
Meta-MAPG arms with another method's arms needs each trial to be its own
arm's algorithm.  ``PairedArms`` builds that algorithm in ``setup`` from the
trial's ``arm`` and the sweep's per-arm table, and hands every call on to it:
training, checkpoints (the inner algorithm writes its own, so
``Algorithm.from_checkpoint`` and ``metamapg evaluate`` read them as usual) and
the resource request (each trial reserves what its own algorithm asks for).
"""

from __future__ import annotations

from typing import Any, Dict

from ray.tune import Trainable

from rllib_metamapg.sweep.plan import ARM_CONFIGS_KEY, callbacks_for

# Keys of the trial config that are the sweep's, not the algorithm's.
_SWEEP_KEYS = ("arm", ARM_CONFIGS_KEY)


def arm_algorithm_config(config: Dict[str, Any]):
    """The full algorithm config of one trial: its arm's algorithm class and tuned
    settings (from the sweep's table, so a trial needs no registry lookup -- a method
    registered in the driver only still runs) plus the sweep-wide keys."""
    from rllib_metamapg.rllib_plugin import with_default_wiring

    entry = config[ARM_CONFIGS_KEY][config["arm"]]
    algo_cls = entry["algorithm"]
    settings = dict(entry["config"])
    settings.update({k: v for k, v in config.items() if k not in _SWEEP_KEYS})
    settings["callbacks_class"] = callbacks_for(algo_cls)
    algo_config = algo_cls.get_default_config().update_from_dict(settings)
    return with_default_wiring(algo_config, algo_config)


class PairedArms(Trainable):
    """One trial of a mixed-method sweep: the trial's arm's own algorithm."""

    @classmethod
    def default_resource_request(cls, config):
        algo_config = arm_algorithm_config(config)
        return algo_config.algo_class.default_resource_request(algo_config)

    def setup(self, config: Dict[str, Any]) -> None:
        algo_config = arm_algorithm_config(config)
        # Trainables no longer log results themselves (Tune's driver does), so the
        # inner algorithm writes nothing of its own.
        self.algorithm = algo_config.algo_class(config=algo_config)

    def step(self) -> Dict[str, Any]:
        result = self.algorithm.train()  # runs the inner algorithm's callbacks too
        # Trainable.train() fills these again for this trainable.
        for key in ("done", "training_iteration", "time_total_s", "timesteps_total",
                    "episodes_total"):
            result.pop(key, None)
        return result

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        self.algorithm.save_checkpoint(checkpoint_dir)

    def load_checkpoint(self, checkpoint) -> None:
        self.algorithm.load_checkpoint(checkpoint)

    def cleanup(self) -> None:
        self.algorithm.stop()
