"""Studies: several paired-seed sweeps (one per env) run by one resumable command and
summarised in one table (``metamapg study``; e.g. ``studies/compare_rllib``)."""
