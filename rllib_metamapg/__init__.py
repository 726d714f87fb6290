"""rllib-metamapg: Meta-MAPG own/peer-learning corrections for multi-agent PG.

The exact tabular engine lives in :mod:`rllib_metamapg.tabular` and never
imports Ray, so importing this package stays cheap.
"""

__version__ = "0.1.0"
