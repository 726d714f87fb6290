"""MATRL (Multi-Agent Trust Region Learning) and its baselines in probability space.

This package holds the pieces built so far: the meta-game solvers
(:mod:`.meta_game`) and the random 2x2 game dynamics of MATRL's Table 1
(:mod:`.iga`: IGA, IGA-PP, WoLF-IGA and MATRL, batched over games).  It is not a
registered method yet: its logit-policy tabular update and its RLlib learner
come next, and the registry line comes with them.  Ray- and torch-free.
"""
