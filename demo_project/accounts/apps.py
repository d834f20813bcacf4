"""The accounts app: every User gets a Profile, made by a post_save receiver."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Importing the module runs its @receiver decorators: the usual way to connect.
        from accounts import signals  # noqa: F401

        _export_spans_when_asked()


def _export_spans_when_asked() -> None:
    """With OTEL_EXPORTER_OTLP_ENDPOINT set (e.g. Jaeger's http://127.0.0.1:4318), send spans there.

    See docs/opentelemetry.md. Does nothing without the variable or without the
    ``otel`` extra installed.
    """
    try:
        from signaltrace.otel import setup_otlp_from_environment
    except ImportError:
        return
    setup_otlp_from_environment(service_name="signaltrace-demo")
