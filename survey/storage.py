"""Safe writes for files that people edit by hand: atomic, backed up, serialised by a lock.

Every write goes to a temporary file in the same folder, is fsynced and renamed over the
target, so a crash or a full disk leaves either the old file or the new one, never half of
each. The previous version is kept as ``NAME.bak``. ``locked(path)`` serialises writers
(the explorer and the CLI may add papers at the same time): a writer re-reads the file
inside the lock, so no writer works on a stale copy.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

LOCK_TIMEOUT_S = 60


class StorageError(RuntimeError):
    """A write that could not be done; the message names the file and the reason."""


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + ".bak")


@contextlib.contextmanager
def locked(path: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the writer lock of ``path`` (a ``NAME.lock`` file beside it)."""
    lock = FileLock(str(lock_path(path)), timeout=timeout)
    try:
        with lock:
            yield
    except Timeout as err:
        raise StorageError(
            f"{path}: another writer has held {lock_path(path).name} for over {timeout:.0f} s; "
            "if no other `survey` process or explorer is running, delete that lock file"
        ) from err


def atomic_write(path: Path, data: bytes, backup: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically, keeping the old content as ``NAME.bak``."""
    path = Path(path)
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if backup and path.exists():
            _copy_atomically(path, backup_path(path))
        _write_then_rename(folder, path, lambda f: f.write(data))
    except OSError as err:
        raise StorageError(f"{path}: could not write ({err.strerror or err}); the file is unchanged") from err


def _copy_atomically(source: Path, target: Path) -> None:
    with open(source, "rb") as src:
        _write_then_rename(target.parent, target, lambda f: shutil.copyfileobj(src, f))


def _write_then_rename(folder: Path, target: Path, fill) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            fill(f)
            f.flush()
            os.fsync(f.fileno())
        if target.exists():
            shutil.copymode(target, tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the folder's entry is on disk.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
