"""The accounts app: every User gets a Profile, made by a post_save receiver."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Importing the module runs its @receiver decorators: the usual way to connect.
        from accounts import signals  # noqa: F401
