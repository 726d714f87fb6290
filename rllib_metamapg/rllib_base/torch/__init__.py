"""The Torch half of the RLlib base: the base learner and the module helpers."""
