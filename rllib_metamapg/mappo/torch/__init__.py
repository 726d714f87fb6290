"""MAPPO's torch pieces: the RLModule with a centralized critic and the learner."""
