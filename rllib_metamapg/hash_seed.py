"""One string-hash seed for every Ray worker, so a fixed ``seed`` reproduces a run.

RLlib walks a multi-agent episode's agents through Python sets
(``MultiAgentEpisode.get_agents_that_stepped`` and the connectors built on
``single_agent_episode_iterator``).  A set of string agent ids iterates in the
order of the strings' hashes, which Python salts per process unless
``PYTHONHASHSEED`` is fixed.  That order decides which module's actions are
sampled first from the shared torch generator, so at the same ``seed`` two
processes can draw different actions: measured on the neural study's Stag
Hunt, seed 0 of ``meta_mapg`` ends at return 8 under one hash seed and 4.3
under another, and two trials of one paired seed stopped being reruns of each
other.  Fixing the hash seed in the workers (the processes that sample and
learn) makes a trial a function of its config again.

The seed is set for the workers Ray starts (``runtime_env`` env var, which
workers read at interpreter start).  A process that is already running -- a
user's own Python session -- keeps its salt: run it with ``PYTHONHASHSEED``
set to reproduce it there (docs/sweeps.md).
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

VAR = "PYTHONHASHSEED"
# The value when the user set none (any fixed integer would do).
DEFAULT = "0"
# Set by Ray's job manager in a submitted job's driver: the job's runtime_env
# already reaches its workers, and Ray refuses a driver that sets a key again.
_JOB_CONFIG = "RAY_JOB_CONFIG_JSON_ENV_VAR"


def worker_runtime_env(runtime_env: Optional[Dict[str, Any]] = None) -> Optional[Dict[str, Any]]:
    """``runtime_env`` for ``ray.init`` with the workers' hash seed added.

    The user's ``PYTHONHASHSEED`` wins (including ``random``, to opt out); in a
    submitted job whose env already sets it nothing is added.
    """
    if os.environ.get(_JOB_CONFIG) and VAR in os.environ:
        return runtime_env
    env = dict(runtime_env or {})
    env_vars = dict(env.get("env_vars") or {})
    env_vars.setdefault(VAR, os.environ.get(VAR, DEFAULT))
    env["env_vars"] = env_vars
    return env
