"""Running sweeps on a Ray cluster through the Ray Jobs API (``metamapg submit``)."""
