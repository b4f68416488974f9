"""cryptowire: a self-hosted real-time crypto data hub."""

__version__ = "0.1.0"
__all__ = ["__version__"]
