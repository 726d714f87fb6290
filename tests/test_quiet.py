"""Ray's routine notices are dropped from our commands' output; real errors are not."""

import logging

from rllib_metamapg.quiet import NOISE, DropNoise


def record(level, message):
    return logging.LogRecord("ray.rllib.x", level, __file__, 1, message, None, None)


def test_routine_notices_are_dropped_and_errors_kept():
    drop = DropNoise()
    for notice in NOISE:
        assert not drop.filter(record(logging.WARNING, f"... {notice} ..."))
        assert drop.filter(record(logging.ERROR, f"... {notice} ..."))  # never an error
    assert drop.filter(record(logging.WARNING, "Trial failed: CUDA out of memory"))


def test_the_filter_sits_on_rllib_s_own_handler():
    from rllib_metamapg.quiet import _FILTER, drop_noise

    drop_noise()
    handlers = logging.getLogger("ray.rllib").handlers + logging.getLogger("ray").handlers
    assert handlers and all(_FILTER in h.filters for h in handlers)
