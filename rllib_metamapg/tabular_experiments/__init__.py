"""The tabular experiments behind ``metamapg tabular <experiment>`` and the command
itself (:mod:`.command`): studies run on the tabular engine
(:mod:`rllib_metamapg.tabular`), which knows nothing of them."""
