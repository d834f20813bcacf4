"""The loop lab: buttons that run real signal scenarios, good and bad."""

from django.apps import AppConfig


class LoopLabConfig(AppConfig):
    name = "looplab"
    verbose_name = "Loop lab"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from looplab import receivers  # noqa: F401 - connects the lab's receivers
