"""Range checks on the PPO settings every method's config inherits.

RLlib's own ``validate()`` lets through values that train silently wrong or die
deep inside Ray (a negative or NaN lr, gamma 1.5, a negative clip).  The base
config's ``validate()`` (:class:`~rllib_metamapg.rllib_base.config.PluginPPOConfig`)
calls :func:`check_ppo_numbers`, so every method's config inherits the checks.
"""

from __future__ import annotations

from rllib_metamapg.schedules import is_finite_number


def _schedule_values(value):
    """A number, or the values of a schedule ``[[timestep, value], ...]``."""
    if isinstance(value, (list, tuple)):
        return [v[1] if isinstance(v, (list, tuple)) and len(v) == 2 else v for v in value]
    return [value]


def check_ppo_numbers(config, label: str) -> None:
    """Reports the first out-of-range PPO setting through ``config._value_error``."""
    def bad(name, value, rule):
        config._value_error(f"{label}: {name}={value!r} {rule}.")

    for name in ("lr", "entropy_coeff"):
        for v in _schedule_values(getattr(config, name)):
            if not is_finite_number(v) or float(v) < 0:
                bad(name, getattr(config, name), "must be a finite number >= 0 (or a "
                    "schedule [[timestep, value], ...] of them); lr 0 freezes the weights")
    for name in ("gamma", "lambda_"):
        v = getattr(config, name)
        if not is_finite_number(v) or not 0.0 <= float(v) <= 1.0:
            bad(name, v, "must lie in [0, 1]")
    for name in ("clip_param", "vf_clip_param"):
        v = getattr(config, name)
        if not is_finite_number(v) or float(v) <= 0:
            bad(name, v, "must be a finite number > 0")
    for name in ("vf_loss_coeff", "kl_coeff", "kl_target"):
        v = getattr(config, name)
        if not is_finite_number(v) or float(v) < 0:
            bad(name, v, "must be a finite number >= 0")
    critic_lr = getattr(config, "critic_lr", None)
    if critic_lr is not None:
        if not is_finite_number(critic_lr) or float(critic_lr) < 0:
            bad("critic_lr", critic_lr, "must be a finite number >= 0, or None to train "
                "the critic with the actor's optimizer at lr")
        elif (config.model_config or {}).get("vf_share_layers"):
            bad("critic_lr", critic_lr, "needs a critic apart from the actor, but "
                "vf_share_layers=True shares their layers; unset one of them")
    if config.grad_clip is not None and (not is_finite_number(config.grad_clip)
                                         or float(config.grad_clip) <= 0):
        bad("grad_clip", config.grad_clip, "must be a number > 0, or None for no clipping")
