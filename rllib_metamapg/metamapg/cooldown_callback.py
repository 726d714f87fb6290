"""``CooldownCallback``: statistic-triggered handoff and lambda/phase reporting."""

from __future__ import annotations

from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

from rllib_metamapg.metamapg.cooldown import PHASES
from rllib_metamapg.results import lookup

RESULT_KEY = "metamapg"


class CooldownCallback(RLlibCallback):
    """Drives the shape-then-cool schedule of a MetaMAPG algorithm.

    The learners advance the time-triggered part themselves (handoff at
    ``handoff_steps`` env steps, then the anneal) so every learner applies it
    from the same update.  This callback adds the statistic trigger: when the
    result-dict value at ``handoff_metric`` has been ``>= handoff_threshold`` for
    ``handoff_patience`` consecutive iterations, it sets the handoff time on
    every learner (local and remote); it applies from the next iteration.  It
    also reports ``result["metamapg"] = {lambda, phase, phase_id, handoff_at,
    correction_estimator}``.
    The state lives in the learners, so it is saved and restored with them.
    """

    def on_train_result(self, *, algorithm, metrics_logger=None, result: dict,
                        **kwargs) -> None:
        group = algorithm.learner_group
        state = _first(group.foreach_learner(lambda learner: learner.get_correction_state()))
        controller = algorithm.config.cooldown_controller()
        if controller.metric is not None:
            steps = lookup(result, NUM_ENV_STEPS_SAMPLED_LIFETIME)
            if steps is None:
                steps = lookup(result, f"env_runners/{NUM_ENV_STEPS_SAMPLED_LIFETIME}") or 0
            new = controller.observe(state, steps, lookup(result, controller.metric))
            if new != state:
                group.foreach_learner(lambda learner, s=new: learner.set_correction_state(s))
                state = new
        result[RESULT_KEY] = {
            "lambda": state["lambda"], "phase": state["phase"],
            "phase_id": PHASES.index(state["phase"]),
            "handoff_at": state["handoff_at"],
            # Which estimator produced the corrections (the results must say).
            "correction_estimator": algorithm.config.correction_estimator,
        }


def _first(results):
    for r in results:
        if not r.ok:
            raise r.get()
        return r.get()
    raise RuntimeError("CooldownCallback: the learner group has no healthy learner.")
