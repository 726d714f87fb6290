"""Torch-specific parts of MetaMAPG."""
