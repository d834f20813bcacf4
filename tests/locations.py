"""How tests spell a receiver's location: the way signaltrace shows it."""

from __future__ import annotations

from typing import Any

from signaltrace.core import short_path


def where(function: Any) -> str:
    """``path/to/module.py:line`` of a function's ``def``."""
    code = function.__code__
    return f"{short_path(code.co_filename)}:{code.co_firstlineno}"
