"""Skips tests of environments whose optional package is not installed, saying why."""

import pytest

from rllib_metamapg.env_specs import ENV_SPECS


def skip_unless_installed(env: str) -> None:
    spec = ENV_SPECS.get(env)
    reason = spec.missing() if spec is not None else None
    if reason:
        pytest.skip(reason)
