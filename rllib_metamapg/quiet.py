"""Our commands show our output: Ray's and RLlib's notices that are not the user's
business are dropped unless ``-v`` is given.  Only the notices listed here are
dropped, and only below ERROR, so a real error still shows."""

from __future__ import annotations

import logging
import os

# Notices every run prints that say nothing about the user's run.
NOISE = (
    "on the new API stack!",                      # RLlib: the default since Ray 2.40
    "Token authentication is enabled for this Ray cluster",
    "Install gputil for GPU system monitoring",
    "Started a local Ray instance",
    "Wrote the latest version of all result files",
)


class DropNoise(logging.Filter):
    """Drops the records of :data:`NOISE` below ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        message = record.getMessage()
        return not any(n in message for n in NOISE)


_FILTER = DropNoise()


def drop_noise() -> None:
    """Installs the filter on Ray's log handlers (imports Ray and RLlib, which create
    them: RLlib's logger has a handler of its own)."""
    import ray.rllib  # noqa: F401
    import ray.tune  # noqa: F401

    for name in ("ray", "ray.rllib", "ray.tune", "ray.data", ""):
        for handler in logging.getLogger(name).handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)


def silence_tune_banners() -> None:
    """Tune's newer console output prints its start banner (the experiment box, the
    TensorBoard hint) even at verbosity 0; its classic output does not.  Tune's own
    INFO lines ("Restoring the run from ...") go too; its warnings stay."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    for name in ("ray.tune", "ray.train"):
        logging.getLogger(name).setLevel(logging.WARNING)
