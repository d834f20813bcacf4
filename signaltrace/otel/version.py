"""The instrumentation's version: signaltrace's own."""

from signaltrace import __version__

__all__ = ["__version__"]
