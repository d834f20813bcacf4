"""Where the lab's uploaded files go: ``MEDIA_ROOT`` when set, else ``lab-media`` beside the database.

The demo's settings set no ``MEDIA_ROOT``; Django's default (the current directory)
would scatter files. Tests set ``MEDIA_ROOT`` to a temporary directory: the storage
follows it, as Django's own ``FileSystemStorage`` follows setting changes.
"""

from pathlib import Path

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.utils.deconstruct import deconstructible
from django.utils.functional import cached_property

#: Names passed to ``LabStorage.delete``, so a page can show the storage call a receiver made.
deleted_names: list[str] = []


def data_dir() -> Path:
    """The directory of the demo's SQLite file (``DEMO_DATABASE``), else the project's."""
    name = str(settings.DATABASES["default"].get("NAME") or "")
    path = Path(name)
    return path.parent if path.is_absolute() else Path(settings.BASE_DIR)


@deconstructible(path="looplab.storage.LabStorage")
class LabStorage(FileSystemStorage):
    @cached_property
    def base_location(self) -> str:
        return str(settings.MEDIA_ROOT or data_dir() / "lab-media")

    def delete(self, name: str) -> None:
        deleted_names.append(name)
        super().delete(name)
