"""The tabular engine (no Ray): games, policies, exact values and corrections, sampled
estimators and the learning loop.  The studies run on it live in
:mod:`rllib_metamapg.tabular_experiments`; the engine reaches methods and samplers
through the registry only."""
