"""Skips tests of environments whose optional package is not installed, saying why."""

import pytest

from rllib_metamapg.env_specs import check_installed


def skip_unless_installed(env: str) -> None:
    try:
        check_installed(env)
    except ValueError as err:
        pytest.skip(str(err))
