"""ConnectorV2 pieces used by MetaMAPG."""

from rllib_metamapg.connectors.peer_columns import AddPeerColumns, peer_column

__all__ = ["AddPeerColumns", "peer_column"]
