"""The trainables of a sweep: each trial's algorithm, built so Tune can reuse its process.

A paired-seed sweep is many short trials.  Started one process per trial, each
pays Python's imports of Ray RLlib and torch, an actor start and a Tune
hand-over before it trains (seconds, against a few seconds of training).  Tune's
``reuse_actors`` keeps a finished trial's process and hands it the next trial's
config through ``Trainable.reset_config``; RLlib's ``Algorithm`` does not
implement that (its counters, metrics logger and env runners are built in
``__init__``), so the sweep runs each trial's algorithm *inside* a trainable
that does: ``reset_config`` stops the finished algorithm and builds the next
one from scratch in the same process.  A reused trial is therefore the same
fresh algorithm a new process would build (same seed -> same initial weights
and results; ``tests/test_sweep_reuse.py`` checks it), without the start-up.

Two trainables, both forwarding every call to the inner algorithm (training,
checkpoints -- the inner algorithm writes its own, so
``Algorithm.from_checkpoint`` and ``metamapg evaluate`` read them as usual --
and the resource request):

* :func:`one_class_trainable` for arms that share one algorithm class: a class
  named like that algorithm (so trial folders and ``--resume`` of sweeps written
  before keep their names) whose trials are ``AlgoClass(config)``, exactly what
  Tune would build from the class itself.
* :class:`PairedArms` for a mixed-method sweep: each trial builds its arm's own
  algorithm class from the trial's ``arm`` and the sweep's per-arm table.
"""

from __future__ import annotations

import gc
from typing import Any, Dict, Sequence

from ray.tune import Trainable

from rllib_metamapg.sweep.plan import ARM_CONFIGS_KEY, algorithm_classes, callbacks_for, one_class

# Keys of the trial config that are the sweep's, not the algorithm's.
_SWEEP_KEYS = ("arm", ARM_CONFIGS_KEY)
# What ``Trainable.train()`` fills in again for the outer trainable.
_OUTER_KEYS = ("done", "training_iteration", "time_total_s", "timesteps_total",
               "episodes_total")


def arm_algorithm_config(config: Dict[str, Any]):
    """The full algorithm config of one trial: its arm's algorithm class and tuned
    settings (from the sweep's table, so a trial needs no registry lookup -- a method
    registered in the driver only still runs) plus the sweep-wide keys."""
    from rllib_metamapg.rllib_base.algorithm import with_default_wiring

    entry = config[ARM_CONFIGS_KEY][config["arm"]]
    algo_cls = entry["algorithm"]
    settings = dict(entry["config"])
    settings.update({k: v for k, v in config.items() if k not in _SWEEP_KEYS})
    settings["callbacks_class"] = callbacks_for(algo_cls)
    algo_config = algo_cls.get_default_config().update_from_dict(settings)
    return with_default_wiring(algo_config, algo_config)


class _InnerAlgorithm(Trainable):
    """A trial that runs one RLlib algorithm and can be handed the next trial's."""

    @classmethod
    def _build(cls, config: Dict[str, Any]):
        """The trial's algorithm, built from its Tune config."""
        raise NotImplementedError

    def setup(self, config: Dict[str, Any]) -> None:
        # Trainables no longer log results themselves (Tune's driver does), so the
        # inner algorithm writes nothing of its own.
        self.algorithm = self._build(config)

    def reset_config(self, new_config: Dict[str, Any]) -> bool:
        # The finished trial's algorithm goes first (its env runners, learner and
        # metrics), then the next trial's is built as a new process would build it.
        self.algorithm.stop()
        self.algorithm = None
        gc.collect()
        self.setup(new_config)
        return True

    def step(self) -> Dict[str, Any]:
        result = self.algorithm.train()  # runs the inner algorithm's callbacks too
        for key in _OUTER_KEYS:
            result.pop(key, None)
        return result

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        self.algorithm.save_checkpoint(checkpoint_dir)

    def load_checkpoint(self, checkpoint) -> None:
        self.algorithm.load_checkpoint(checkpoint)

    def cleanup(self) -> None:
        if self.algorithm is not None:
            self.algorithm.stop()


class PairedArms(_InnerAlgorithm):
    """One trial of a mixed-method sweep: the trial's arm's own algorithm."""

    @classmethod
    def default_resource_request(cls, config):
        algo_config = arm_algorithm_config(config)
        return algo_config.algo_class.default_resource_request(algo_config)

    @classmethod
    def _build(cls, config):
        algo_config = arm_algorithm_config(config)
        return algo_config.algo_class(config=algo_config)


class _OneClass(_InnerAlgorithm):
    """Trials of one algorithm class, built from the trial's config dict as Tune
    builds the class itself."""

    algorithm_class: type = None  # set by one_class_trainable

    @classmethod
    def default_resource_request(cls, config):
        return cls.algorithm_class.default_resource_request(config)

    @classmethod
    def _build(cls, config):
        return cls.algorithm_class(config=config)


def one_class_trainable(algo_cls: type) -> type:
    """The reusable trainable of ``algo_cls``'s trials, named like ``algo_cls``: Tune
    names trial folders and checks ``Tuner.restore`` by the trainable's name."""
    return type(algo_cls.__name__, (_OneClass,),
                {"algorithm_class": algo_cls, "__module__": __name__,
                 "__doc__": f"Reusable sweep trials of {algo_cls.__name__}."})


def sweep_trainable(arms: Sequence[str]):
    """The trainable of the arms' trials (Tune may reuse its processes): the arms'
    algorithm class, wrapped, when they share one, else :class:`PairedArms`."""
    if one_class(arms):
        return one_class_trainable(next(iter(algorithm_classes(arms).values())))
    return PairedArms
