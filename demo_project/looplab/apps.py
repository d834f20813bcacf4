"""The loop lab: buttons that run real signal scenarios, good and bad."""

import importlib.util
import sys
from types import ModuleType

from django.apps import AppConfig


class LoopLabConfig(AppConfig):
    name = "looplab"
    verbose_name = "Loop lab"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from looplab import receivers, twice, twice_uid  # noqa: F401 - connects the lab's receivers

        # The "connected twice" scenario: the same files imported under a second name.
        load_again(twice, "twice")
        load_again(twice_uid, "twice_uid")


def load_again(module: ModuleType, name: str) -> ModuleType:
    """Import ``module``'s file once more as the top-level module ``name`` (once per process)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, module.__file__)
    assert spec is not None and spec.loader is not None
    again = importlib.util.module_from_spec(spec)
    sys.modules[name] = again
    spec.loader.exec_module(again)
    return again
