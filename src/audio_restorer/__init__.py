"""Audio Restorer: offline restoration of historical and degraded recordings."""

__version__ = "0.1.0"
__all__ = ["__version__"]
