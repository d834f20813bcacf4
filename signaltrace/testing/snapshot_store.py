"""The reviewed snapshot file beside a test module, written safely by concurrent processes.

``tests/test_signup.py`` keeps its snapshots in ``tests/__signal_snapshots__/test_signup.json``::

    {
      "version": 1,
      "snapshots": {
        "test_signup": ["post_save(sender=auth.User) send depth=0 ...", "  -> ..."],
        "TestLogin::test_login.2": ["..."]
      }
    }

Records are sorted by name and written with a fixed indentation, so a change shows
as a small diff in review. pytest-xdist workers and the processes of Django's
``--parallel`` runner may write records of the same file at once: each write reads
the file, changes one record and replaces the file, all under an exclusive lock, and
the replacement is atomic (``os.replace``), so a reader never sees half a file and
no writer loses another's record.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: The directory, beside the test module, that holds its snapshot file.
SNAPSHOT_DIRECTORY = "__signal_snapshots__"
#: The version of the file's layout.
FORMAT_VERSION = 1


class SnapshotFileError(Exception):
    """The snapshot file exists but cannot be read as one."""


def snapshot_path(test_file: str | os.PathLike[str]) -> Path:
    """Where the snapshots of the test module ``test_file`` live."""
    path = Path(test_file)
    return path.parent / SNAPSHOT_DIRECTORY / f"{path.stem}.json"


def display_path(path: Path) -> str:
    """``path`` relative to the current directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def read_snapshots(path: Path) -> dict[str, list[str]]:
    """The records of the file at ``path`` by name; empty when there is no file yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data: Any = json.loads(text)
        records = data["snapshots"]
        if not isinstance(records, dict) or not all(isinstance(lines, list) for lines in records.values()):
            raise TypeError("'snapshots' must map names to lists of lines")
    except (ValueError, KeyError, TypeError) as error:
        raise SnapshotFileError(f"{display_path(path)} is not a signal snapshot file: {error}") from None
    return records


def write_snapshot(path: Path, name: str, lines: list[str]) -> None:
    """Store ``lines`` as the record ``name`` of the file at ``path``, keeping its other records."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(path):
        records = read_snapshots(path)
        records[name] = list(lines)
        ordered = dict(sorted(records.items()))
        text = json.dumps({"version": FORMAT_VERSION, "snapshots": ordered}, indent=2, ensure_ascii=False)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(text + "\n", encoding="utf-8")
        os.replace(temporary, path)


def _lock_path(path: Path) -> Path:
    """A lock file outside the checkout, one per snapshot file: nothing to ignore or commit."""
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"signaltrace-snapshot-{digest}.lock"


@contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock for ``path`` across processes (``flock``, or ``msvcrt`` on Windows).

    The lock file is never removed: removing it while another process waits on it
    would let a third process lock a new file with the same name at the same time.
    """
    descriptor = os.open(_lock_path(path), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(descriptor, msvcrt.LK_LOCK, 1)
            try:
                yield
            finally:
                os.lseek(descriptor, 0, os.SEEK_SET)
                msvcrt.locking(descriptor, msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield  # closing the descriptor releases the lock
    finally:
        os.close(descriptor)
