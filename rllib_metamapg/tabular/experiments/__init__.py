"""The tabular experiments behind ``metamapg tabular <experiment>``."""
