"""Whether RLlib's sampling cuts a fixed-length episode into chunks before the learner sees it.

With ``batch_mode="truncate_episodes"`` every env runner returns
``rollout_fragment_length`` steps per vector env per sample, wherever its
episodes stand; the learner gets the pieces as separate episode chunks.  The
trajectory estimator of the Meta-MAPG corrections treats each chunk as an
episode, so the dependence of a reward on actions taken before the cut is lost.
On the 12-round IPD with 8-step fragments that shrinks the own and peer terms
while keeping their direction (``benchmarks/estimator_regime.py`` measures it;
docs/rllib.md renders the table).  When every episode has the
same length ``T`` and the fragment is a multiple of ``T``, the vector envs stay in
step and every sample ends on episode boundaries, so no episode is ever cut.
"""

from __future__ import annotations

from typing import Any, Optional

from rllib_metamapg.envs import fixed_episode_length


def fragment_lengths(config: Any) -> list:
    """Every env runner's rollout fragment length (``"auto"`` resolved as RLlib does)."""
    runners = max(1, int(config.num_env_runners or 0))
    indices = range(1, runners + 1) if config.num_env_runners else (0,)
    return sorted({int(config.get_rollout_fragment_length(worker_index=i)) for i in indices})


def cut_episodes_problem(config: Any) -> Optional[str]:
    """Why the learner would see cut episode chunks with these settings, or ``None``.

    ``None`` also when the env's episode length is not known here (an env of
    the user's, or one whose episodes end at different times).
    """
    if config.batch_mode != "truncate_episodes":
        return None
    length = fixed_episode_length(config.env, config.env_config)
    if length is None or length <= 1:
        return None
    fragments = fragment_lengths(config)
    bad = [f for f in fragments if f % length]
    if not bad:
        return None
    envs = config.num_envs_per_env_runner
    runners = max(1, int(config.num_env_runners or 0))
    return (f"rollout_fragment_length={config.rollout_fragment_length!r} gives {bad[0]} "
            f"steps per vector env per sample, which cuts the {length}-step episodes of env "
            f"{config.env!r} into chunks; the trajectory estimator treats each chunk as an "
            f"episode, so its corrections lose every dependence across a cut and come out "
            f"shrunk (docs/rllib.md, 'Corrections in the regime they run in', measures "
            f"by how much). Set rollout_fragment_length to a multiple of {length} and "
            f"train_batch_size_per_learner to that x num_envs_per_env_runner x env runners "
            f"(e.g. {length} and {length * envs * runners}). batch_mode='complete_episodes' "
            f"also keeps episodes whole, but RLlib then resets the envs with the same seed "
            f"at every sample.")
