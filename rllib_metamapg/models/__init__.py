"""RLModules shipped with rllib-metamapg."""

from rllib_metamapg.models.tabular_rl_module import TabularPPOTorchRLModule

__all__ = ["TabularPPOTorchRLModule"]
