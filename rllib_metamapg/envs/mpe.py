"""MPE tasks from ``mpe2`` (the maintained Multi-Particle Environments) for RLlib.

Discrete actions, the tasks' default sizes, ``max_cycles`` 25 as in PettingZoo.
Wrapped with :class:`~rllib_metamapg.envs.pettingzoo_ipd.OrderedParallelPettingZooEnv`
so the agent order (and paired seeds) do not depend on ``PYTHONHASHSEED``.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, Optional

from rllib_metamapg.envs.pettingzoo_ipd import OrderedParallelPettingZooEnv

MPE_TASKS = {
    "mpe_simple_spread": "mpe2.simple_spread_v3",
    "mpe_simple_reference": "mpe2.simple_reference_v3",
    "mpe_simple_speaker_listener": "mpe2.simple_speaker_listener_v4",
}


def make_mpe(name: str, config: Optional[Dict[str, Any]] = None) -> OrderedParallelPettingZooEnv:
    """An MPE task as an RLlib ``MultiAgentEnv``; ``config`` goes to the task's ``parallel_env``.

    Raises:
        ImportError: ``mpe2`` is missing, with the install command.
    """
    try:
        module = importlib.import_module(MPE_TASKS[name])
    except ModuleNotFoundError as err:
        raise ImportError(f"env {name!r} needs mpe2: pip install 'rllib-metamapg[mpe]' "
                          f"-c constraints.txt ({err}).") from None
    config = {"max_cycles": 25, **dict(config or {}), "continuous_actions": False}
    return OrderedParallelPettingZooEnv(module.parallel_env(**config))
