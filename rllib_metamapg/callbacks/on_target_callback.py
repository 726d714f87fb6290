"""``OnTargetCallback``: how often an episode's joint actions were a target of the game.

A matrix game's target (Chicken's both-swerve, Climbing's (A, A), a no-conflict
game's best cell) is what the tabular engine counts as success.  Summed payoffs
cannot always tell it apart -- in Chicken, both swerving and one swerving both sum
to 0 -- so a sweep scores such games by this rate on greedy evaluation episodes
(``EnvSpec.score = "on_target"``).  The env computes the rate over the whole
episode (a rollout fragment may cut it into chunks) and puts it in the last step's
info; this callback logs it beside RLlib's ``episode_return_mean``, averaged over
the same window of episodes.  Envs without it are left alone.
"""

from __future__ import annotations

import math

from ray.rllib.callbacks.callbacks import RLlibCallback

from rllib_metamapg.envs.matrix_game import ON_TARGET_RATE


class OnTargetCallback(RLlibCallback):
    """Logs ``env_runners/on_target_rate`` (``evaluation/env_runners/...`` when evaluating)."""

    def on_episode_end(self, *, episode, env_runner=None, metrics_logger=None,
                       **kwargs) -> None:
        if metrics_logger is None:
            return
        infos = episode.get_infos(-1)
        rates = [info[ON_TARGET_RATE] for info in infos.values()
                 if isinstance(info, dict) and ON_TARGET_RATE in info]
        if not rates:
            return
        config = getattr(env_runner, "config", None)
        # RLlib's own episode metrics use this window (MultiAgentEnvRunner).
        window = 100 if config is None else max(1, math.ceil(
            config.metrics_num_episodes_for_smoothing / (config.num_env_runners or 1)))
        metrics_logger.log_value(ON_TARGET_RATE, float(rates[0]), window=window)
