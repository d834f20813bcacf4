"""Markers shared by the test modules."""

from __future__ import annotations

import pytest
from django.dispatch import Signal

#: Whether the Django under test has ``Signal.asend`` and async receivers (5.0+).
HAS_ASEND = hasattr(Signal, "asend")

needs_asend = pytest.mark.skipif(not HAS_ASEND, reason="Signal.asend and async receivers need Django 5.0+")
