"""RLlib's classic names, as RLlib's own tuned-example files and ``rllib`` commands used them,
mapped to the new API stack's (``rllib train`` / ``rllib evaluate``).

RLlib's last YAML tuned examples (Ray 2.x) still say ``num_workers``,
``num_sgd_iter``, ``sgd_minibatch_size``, ``model: {...}``,
``observation_filter: MeanStdFilter`` and stop on ``episode_reward_mean`` or
``timesteps_total``.  Ray 2.60 maps a few of them itself
(``AlgorithmConfig._translate_special_keys``: ``num_workers``, ``lambda``, ...),
names the new one in the error of others (``num_envs_per_worker``: "Use
``AlgorithmConfig.num_envs_per_env_runner``"), and silently ignores the rest (an
old-stack ``model`` dict, ``observation_filter``).  Here every such key gets its
new-stack meaning, or a clear refusal, and each mapping prints one note.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Tuple

# Renames Ray 2.60 neither maps nor names in an error.
RENAMED = {
    "num_sgd_iter": "num_epochs",
    "sgd_minibatch_size": "minibatch_size",
    "evaluation_num_workers": "evaluation_num_env_runners",
    "model": "model_config",
}
# Old-stack switches with no meaning on the new stack (RLlib keeps them as -1
# placeholders): dropped with a note.
NO_EFFECT = ("enable_connectors", "simple_optimizer", "_enable_rl_module_api",
             "_enable_learner_api", "_enable_new_api_stack")
# Classic result keys -> the new stack's (ray.rllib.utils.metrics).
STOP_KEYS = {
    "episode_reward_mean": "env_runners/episode_return_mean",
    "episode_reward_max": "env_runners/episode_return_max",
    "episode_reward_min": "env_runners/episode_return_min",
    "episode_len_mean": "env_runners/episode_len_mean",
    "episodes_total": "env_runners/num_episodes_lifetime",
    "timesteps_total": "num_env_steps_sampled_lifetime",
    "agent_timesteps_total": "num_agent_steps_sampled_lifetime",
}
for _old, _new in list(STOP_KEYS.items()):
    if _new.startswith("env_runners/"):
        STOP_KEYS[f"sampler_results/{_old}"] = _new
        STOP_KEYS[f"evaluation/{_old}"] = f"evaluation/{_new}"
        STOP_KEYS[f"evaluation/sampler_results/{_old}"] = f"evaluation/{_new}"

# Names RLlib maps that are only its attributes' spelling (``lambda`` is a Python
# keyword), not old names: no note.
SPELLINGS = ("lambda_", "callbacks_class", "input_")

_USE = re.compile(r"Use `(?:AlgorithmConfig\.)?([A-Za-z_][A-Za-z0-9_]*)`")


def translate_stop(stop: Dict[str, Any]) -> Tuple[Dict[str, Any], List[str]]:
    """``stop`` with classic result keys renamed; one note per renamed key."""
    out, notes = {}, []
    for key, value in stop.items():
        new = STOP_KEYS.get(key, key)
        if new != key:
            notes.append(f"stop.{key} is RLlib's old result key; using {new}.")
        out[new] = value
    return out, notes


def _deprecated_target(base, key: str):
    """The new name RLlib's deprecation error gives for ``key``, if any.

    Asked of the setter, on a throwaway config: RLlib's deprecated getters raise
    only the first time in a process (``log_once``), its setters every time.
    """
    prop = getattr(type(base), key, None)
    if not isinstance(prop, property) or prop.fset is None:
        return None
    try:
        prop.fset(type(base)(), None)
    except ValueError as err:
        found = _USE.search(str(err))
        if found and found.group(1) != key:
            return found.group(1)
    except Exception:  # noqa: BLE001 - a live setter refusing None: not deprecated
        return None
    return None


def translate_config(config: Dict[str, Any], base) -> Tuple[Dict[str, Any], List[str]]:
    """``config`` (a tuned-example file's ``config:``) in ``base``'s new-stack names.

    Args:
        config: The file's (or ``--config``'s) settings.
        base: The algorithm's default config (to ask RLlib for its own renames).

    Returns:
        ``(settings, notes)``: the settings under their new names, and one line per
        key that was renamed, moved or dropped.
    """
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

    out: Dict[str, Any] = {}
    notes: List[str] = []
    for key, value in config.items():
        if key in NO_EFFECT:
            notes.append(f"config.{key} is an old-stack switch with no effect on RLlib's new "
                         "API stack; ignored.")
            continue
        if key == "observation_filter":
            if value not in ("NoFilter", "MeanStdFilter"):
                raise ValueError(f"config.observation_filter={value!r}: the new API stack "
                                 "offers 'MeanStdFilter' (as an env-to-module connector) or "
                                 "'NoFilter'.")
            if value == "MeanStdFilter":
                out["observation_filter"] = value  # installed as a connector by the caller
                notes.append("config.observation_filter=MeanStdFilter is an old-stack filter; "
                             "using RLlib's MeanStdFilter env-to-module connector.")
            continue
        if key == "vf_share_layers" and value != -1:  # PPO's old top-level switch
            out.setdefault("model_config", {})["vf_share_layers"] = bool(value)
            notes.append("config.vf_share_layers is an old-stack PPO setting; using "
                         "model_config.vf_share_layers.")
            continue
        new = RENAMED.get(key) or AlgorithmConfig._translate_special_keys(
            key, warn_deprecated=False)
        if new == key:
            new = _deprecated_target(base, key) or key
        if new == "framework_str":
            new = key  # RLlib's files' own name for it, checked as such
        if new != key and new not in SPELLINGS:
            notes.append(f"config.{key} is RLlib's old name; using {new}.")
        if key == "model":
            value = _model_config(value)
        if new == "model_config" and isinstance(value, dict):
            value = {**out.get("model_config", {}), **value}
        out[new] = value
    return out, notes


def _model_config(old: Any) -> Dict[str, Any]:
    """An old-stack ``model`` dict as the new stack's ``model_config``: the keys the
    default RLModule reads, or a refusal naming the ones it does not."""
    import dataclasses

    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    if not isinstance(old, dict):
        raise ValueError(f"config.model={old!r} must be a mapping of model settings.")
    known = {f.name for f in dataclasses.fields(DefaultModelConfig)}
    unknown = sorted(set(old) - known)
    if unknown:
        raise ValueError(f"config.model: {unknown} are old-stack model settings the new API "
                         f"stack's default RLModule does not read; it reads {sorted(known)}. "
                         "For a custom model, write an RLModule (config.rl_module).")
    return old


class MeanStdFilterConnector:
    """``env_to_module_connector`` factory for ``observation_filter: MeanStdFilter``
    (a picklable class: Tune ships the config to its trial processes)."""

    def __init__(self, multi_agent: bool):
        self.multi_agent = multi_agent

    def __call__(self, env=None, spaces=None, device=None):
        from ray.rllib.connectors.env_to_module import MeanStdFilter

        return MeanStdFilter(multi_agent=self.multi_agent)
