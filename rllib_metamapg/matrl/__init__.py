"""MATRL (Multi-Agent Trust Region Learning), a registered method of both engines.

* :mod:`.method`: its registry entry and arms (``matrl``, ``matrl_no_br``, ``il_pp``);
* :mod:`.tabular_update`: the logit-policy update of the tabular engine;
* :mod:`.matrl` / :mod:`.matrl_learner` / :mod:`.torch`: the RLlib algorithm,
  config and learner (imported only when used: they need Ray);
* :mod:`.meta_game`: the meta-game solvers;
* :mod:`.iga`: MATRL's Table 1 setting (probability-space dynamics on random
  2x2 games, with IGA, IGA-PP and WoLF-IGA).
"""
