"""Safe writes for files that people edit by hand: atomic, backed up, serialised by a lock.

Every write goes to a temporary file in the same folder, is fsynced and renamed over the
target, so a crash or a full disk leaves either the old file or the new one, never half of
each. The previous version is kept as ``NAME.bak``. ``locked(path)`` serialises writers
(the explorer and the CLI may add papers at the same time): a writer re-reads the file
inside the lock, so no writer works on a stale copy.

A target that is a symlink (a Zotero auto-export links its output) is written through: the
real file is replaced and the link stays a link. A replaced file keeps its mode and, where
the user may set them, its owner and group; a new file gets the mode the umask gives, as
``open(path, "w")`` would. A read-only file is refused, never silently replaced.
``check_writable(path)`` says, without writing anything, whether a write could succeed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from filelock import FileLock, Timeout

LOCK_TIMEOUT_S = 60

_UMASK_LOCK = threading.Lock()


class StorageError(RuntimeError):
    """A write that could not be done; the message names the file and the reason."""


def real_path(path: Path) -> Path:
    """``path`` with every symlink resolved: the file that a write must replace."""
    return Path(os.path.realpath(path))


# The lock and the backup live beside the real file, not beside a link to it: every writer of
# one file must share one lock however it names the file (the link, the real path, another
# link), and the write already needs the real file's folder to be writable for its temporary.
def lock_path(path: Path) -> Path:
    real = real_path(path)
    return real.with_name(real.name + ".lock")


def backup_path(path: Path) -> Path:
    real = real_path(path)
    return real.with_name(real.name + ".bak")


def current_umask() -> int:
    """The process's umask, read without changing it where Linux shows it in /proc."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    # Elsewhere only os.umask can tell, by setting it; while it is set, another thread's new
    # file would get 0o022, the most common umask, rather than a world-writable 0.
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def new_file_mode() -> int:
    return 0o666 & ~current_umask()


def check_writable(path: Path) -> None:
    """Raise ``StorageError`` with a one-line reason if ``atomic_write(path, ...)`` cannot succeed.

    Writes nothing and creates nothing, so a command can refuse before doing any work, and a
    dry run can report what a real run would meet. Reasons: the target is a folder, the file
    is read-only, its folder is read-only, or the missing folder cannot be created. (Root may
    write anywhere, so as root only a read-only file system is refused.)
    """
    path = Path(path)
    real = real_path(path)
    shown = _shown(path, real)
    if real.is_dir():
        raise StorageError(f"{shown}: is a folder, not a file; nothing was changed")
    if real.exists() and not os.access(real, os.W_OK):
        raise StorageError(f"{shown}: the file is read-only; nothing was changed")
    existing = _nearest_existing(real.parent)
    if not existing.is_dir():
        raise StorageError(f"{shown}: the folder {real.parent} cannot be created, "
                           f"{existing} is not a folder; nothing was changed")
    if not os.access(existing, os.W_OK | os.X_OK):
        if existing == real.parent:
            raise StorageError(f"{shown}: the folder {existing} is read-only (no temporary file, "
                               "backup or lock can be made there); nothing was changed")
        raise StorageError(f"{shown}: the folder {real.parent} cannot be created, "
                           f"{existing} is read-only; nothing was changed")


@contextlib.contextmanager
def locked(path: Path, timeout: float = LOCK_TIMEOUT_S, *, create: bool = True) -> Iterator[None]:
    """Hold the writer lock of ``path`` (a ``NAME.lock`` file beside the real file).

    ``create=False`` takes no lock and creates no file: for a dry run, or any caller that only
    reads, in a folder it may not write to. Reading without the lock is safe because every
    write is an atomic rename: a reader sees the old file or the new one, never half of each.
    Such a caller runs ``check_writable(path)`` to say whether a real run could write.
    """
    if not create:
        yield
        return
    lock_file = lock_path(path)
    lock = FileLock(str(lock_file), timeout=timeout)
    try:
        lock.acquire()
    except Timeout as err:
        raise StorageError(
            f"{path}: another writer has held {lock_file.name} for over {timeout:.0f} s; "
            "if no other `survey` process or explorer is running, delete that lock file"
        ) from err
    except OSError as err:
        raise StorageError(f"{path}: cannot create the lock file {lock_file} ({_reason(err)}); "
                           "nothing was changed") from err
    try:
        yield
    finally:
        lock.release()


def atomic_write(path: Path, data: bytes, backup: bool = True) -> None:
    """Replace ``path`` (the real file, if it is a symlink) with ``data`` atomically, keeping the
    old content as ``NAME.bak``; on any failure the file is as it was and no temporary is left."""
    path = Path(path)
    real = real_path(path)
    shown = _shown(path, real)
    check_writable(path)
    _make_folder(real.parent, shown)
    try:
        if backup and real.exists():
            with open(real, "rb") as old:
                # The backup takes the file's own mode: a private file leaves no readable copy.
                _replace(backup_path(real), lambda f: shutil.copyfileobj(old, f), metadata_of=real)
        _replace(real, lambda f: f.write(data), metadata_of=real)
    except OSError as err:
        raise StorageError(f"{shown}: could not write ({_reason(err)}); the file is unchanged") from err


def _replace(target: Path, fill: Callable[[BinaryIO], object], metadata_of: Path) -> None:
    """Fill a temporary file beside ``target``, give it ``metadata_of``'s mode and owner, rename it
    over ``target``; the temporary is removed if anything fails."""
    fd, tmp = _temporary_beside(target)
    try:
        with os.fdopen(fd, "wb") as f:
            fill(f)
            f.flush()
            _copy_metadata(f.fileno(), metadata_of)
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def _temporary_beside(target: Path) -> tuple[int, str]:
    try:
        return tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as err:
        raise StorageError(f"{target.parent}: cannot create a temporary file in this folder "
                           f"({_reason(err)}); {target.name} was not changed") from err


def _copy_metadata(fd: int, source: Path) -> None:
    """Give the open file ``fd`` the mode and owner of ``source``, or, when ``source`` does not
    exist yet, the mode a new file gets (mkstemp's own 0600 ignores the umask)."""
    try:
        st = os.stat(source)
    except FileNotFoundError:
        os.fchmod(fd, new_file_mode())
        return
    _copy_owner(fd, st)  # first: a change of owner may clear the setuid and setgid bits
    os.fchmod(fd, stat.S_IMODE(st.st_mode))


def _copy_owner(fd: int, st: os.stat_result) -> None:
    # Only root may give a file to another user; a member of the file's group may keep the group.
    # Where neither is allowed (or the file system has no owners) the write goes on regardless.
    for uid in (st.st_uid, -1):
        try:
            os.fchown(fd, uid, st.st_gid)
            return
        except OSError:
            continue


def _make_folder(folder: Path, shown: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StorageError(f"{shown}: cannot create the folder {folder} ({_reason(err)}); "
                           "nothing was changed") from err


def _nearest_existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _shown(path: Path, real: Path) -> str:
    """``path`` as messages name it, with the real file when it is reached through a link."""
    return str(path) if Path(os.path.abspath(path)) == real else f"{path} (a link to {real})"


def _reason(err: OSError) -> str:
    return err.strerror or str(err)


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the folder's entry is on disk.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
