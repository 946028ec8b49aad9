"""The version, below every layer, so that any module may say which wtflow wrote something."""

__version__ = "0.1.0"
