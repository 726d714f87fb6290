"""MAPPO: PPO with a centralized critic (Yu et al. 2022, "The Surprising Effectiveness of
PPO in Cooperative Multi-Agent Games").  Each agent's actor is ``ippo``'s; its critic
reads every agent's observation at the same env step.  RLlib only (``engines``): the
tabular engine's exact and sampled modes have no learned critic to centralize."""
