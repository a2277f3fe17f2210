"""Safe writes: through symlinks, keeping modes, refusing read-only targets, never half a file."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from survey import storage
from survey.storage import StorageError, atomic_write, backup_path, check_writable, locked
from tests.conftest import REPO

AS_ROOT = os.geteuid() == 0
needs_non_root = pytest.mark.skipif(AS_ROOT, reason="root ignores file permissions")


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def deny_write(monkeypatch, *paths: Path) -> None:
    """``os.access`` says ``paths`` are not writable: the permission logic tested even as root."""
    denied = {os.path.realpath(p) for p in paths}
    real_access = os.access

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and os.path.realpath(path) in denied:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)


@pytest.fixture
def linked(tmp_path) -> tuple[Path, Path]:
    """``bib/c.bib``, a symlink to ``zotero/export.bib`` (as a Zotero auto-export is linked)."""
    real = tmp_path / "zotero" / "export.bib"
    real.parent.mkdir()
    real.write_bytes(b"old\n")
    link = tmp_path / "bib" / "c.bib"
    link.parent.mkdir()
    link.symlink_to(real)
    return link, real


def test_a_write_through_a_symlink_updates_the_real_file_and_keeps_the_link(linked, tmp_path):
    link, real = linked
    atomic_write(link, b"new\n")
    assert link.is_symlink() and link.resolve() == real
    assert real.read_bytes() == b"new\n"
    assert backup_path(link) == real.with_name("export.bib.bak")
    assert backup_path(link).read_bytes() == b"old\n"
    assert sorted(p.name for p in link.parent.iterdir()) == ["c.bib"]  # nothing beside the link
    assert not temporaries(tmp_path)


def test_the_lock_of_a_link_is_the_lock_of_its_real_file(linked):
    link, real = linked
    with locked(link):
        assert real.with_name("export.bib.lock").exists()
    assert sorted(p.name for p in link.parent.iterdir()) == ["c.bib"]


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o600])
def test_a_replaced_file_and_its_backup_keep_its_mode(tmp_path, mode):
    path = tmp_path / "c.bib"
    path.write_bytes(b"old\n")
    path.chmod(mode)
    atomic_write(path, b"new\n")
    assert mode_of(path) == mode and mode_of(backup_path(path)) == mode
    assert path.read_bytes() == b"new\n"


@pytest.mark.skipif(not AS_ROOT, reason="only root may give a file to another user")
def test_a_replaced_file_keeps_its_owner_and_group(tmp_path):
    path = tmp_path / "c.bib"
    path.write_bytes(b"old\n")
    os.chown(path, 1234, 5678)
    atomic_write(path, b"new\n")
    assert (path.stat().st_uid, path.stat().st_gid) == (1234, 5678)


NEW_FILE_SCRIPT = """
import os, stat, sys
from pathlib import Path
os.umask(int(sys.argv[1], 8))
from survey.storage import atomic_write, current_umask
target = Path(sys.argv[2])
atomic_write(target, b"x")
print(oct(current_umask()), oct(stat.S_IMODE(target.stat().st_mode)))
"""


@pytest.mark.parametrize(("umask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_file_gets_the_mode_of_the_umask(tmp_path, umask, expected):
    # In a child process: the umask belongs to the whole process, so the tests' own stays as it is.
    target = tmp_path / "new" / "figure.svg"
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", NEW_FILE_SCRIPT, oct(umask), str(target)],
                          cwd=REPO, env={**os.environ, "PYTHONPATH": path},
                          capture_output=True, text=True, check=True)
    assert done.stdout.split() == [oct(umask), oct(expected)]


def test_the_umask_is_read_the_same_without_proc(monkeypatch):
    from_proc = storage.current_umask()

    def no_proc(*args, **kwargs):
        raise FileNotFoundError("/proc/self/status")

    monkeypatch.setattr(storage, "open", no_proc, raising=False)
    assert storage.current_umask() == from_proc
    assert storage.current_umask() == from_proc  # and the fallback put the umask back


def assert_refused_unchanged(path: Path, before: bytes, match: str) -> None:
    with pytest.raises(StorageError, match=match) as raised:
        atomic_write(path, b"new\n")
    assert "\n" not in str(raised.value)
    assert path.read_bytes() == before
    assert not backup_path(path).exists() and not temporaries(path.parent)


def test_a_read_only_file_is_refused_and_left_byte_for_byte(tmp_path, monkeypatch):
    path = tmp_path / "c.bib"
    path.write_bytes(b"old\r\n\xff")
    deny_write(monkeypatch, path)
    assert_refused_unchanged(path, b"old\r\n\xff", r"c\.bib: the file is read-only; nothing was changed")


@needs_non_root
def test_a_file_without_write_permission_is_refused(tmp_path):
    path = tmp_path / "c.bib"
    path.write_bytes(b"old\n")
    path.chmod(0o444)
    assert_refused_unchanged(path, b"old\n", "read-only")


def test_a_read_only_folder_gives_a_storage_error_naming_it(tmp_path, monkeypatch):
    path = tmp_path / "c.bib"
    path.write_bytes(b"old\n")
    deny_write(monkeypatch, tmp_path)
    assert_refused_unchanged(path, b"old\n", rf"the folder {tmp_path} is read-only")


@needs_non_root
def test_a_folder_without_write_permission_gives_a_storage_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "c.bib"
    path.write_bytes(b"old\n")
    folder.chmod(0o555)
    try:
        with pytest.raises(StorageError, match=str(folder)) as raised:
            atomic_write(path, b"new\n")
        assert not isinstance(raised.value, OSError)
        with pytest.raises(StorageError, match="lock file"):
            with locked(path):
                pass
        assert path.read_bytes() == b"old\n"
    finally:
        folder.chmod(0o755)


def test_a_temporary_that_cannot_be_created_gives_a_storage_error_naming_the_folder(tmp_path, monkeypatch):
    # os.access can be wrong (ACLs, network file systems): the failure itself is caught too.
    path = tmp_path / "c.bib"
    path.write_bytes(b"old\n")

    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(storage.tempfile, "mkstemp", refused)
    with pytest.raises(StorageError, match=rf"{tmp_path}: cannot create a temporary file .*Permission denied"):
        atomic_write(path, b"new\n", backup=False)
    assert path.read_bytes() == b"old\n"


def test_a_folder_that_cannot_be_created_gives_a_storage_error(tmp_path):
    (tmp_path / "plain").write_text("a file, not a folder")
    path = tmp_path / "plain" / "out" / "c.bib"
    with pytest.raises(StorageError, match=rf"folder {path.parent} cannot be created, .*plain is not a folder"):
        atomic_write(path, b"new\n")
    with pytest.raises(StorageError, match="cannot create the lock file"):
        with locked(path):
            pass


@pytest.mark.parametrize("failing_fsync", [1, 2], ids=["while-backing-up", "while-writing"])
def test_a_full_disk_leaves_the_original_and_no_temporary(tmp_path, monkeypatch, failing_fsync):
    path = tmp_path / "c.bib"
    path.write_bytes(b"original\n")
    real_fsync, file_fsyncs = os.fsync, []

    def fsync(fd):
        if stat.S_ISREG(os.fstat(fd).st_mode):  # a folder's fsync does not count
            file_fsyncs.append(fd)
            if len(file_fsyncs) == failing_fsync:
                raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(StorageError, match=r"c\.bib: could not write \(No space left on device\); the file is unchanged"):
        atomic_write(path, b"new content\n")
    assert path.read_bytes() == b"original\n"
    assert not temporaries(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} <= {"c.bib", "c.bib.bak"}


def test_check_writable_accepts_a_new_file_in_a_new_folder_and_creates_nothing(tmp_path):
    check_writable(tmp_path / "new" / "deeper" / "c.bib")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(("case", "message"), [
    ("folder", r"c\.bib: is a folder, not a file"),
    ("read-only file", r"c\.bib: the file is read-only; nothing was changed"),
    ("read-only folder", r"the folder .*/ro is read-only \(no temporary file, backup or lock can be made there\)"),
    ("missing folder in a read-only one", r"the folder .*/ro/new cannot be created, .*/ro is read-only"),
    ("folder under a file", r"the folder .*/plain/new cannot be created, .*/plain is not a folder"),
])
def test_check_writable_says_why_in_one_line(tmp_path, monkeypatch, case, message):
    ro, plain = tmp_path / "ro", tmp_path / "plain"
    ro.mkdir()
    plain.write_text("")
    (tmp_path / "folder" / "c.bib").mkdir(parents=True)
    (tmp_path / "file").mkdir()
    (tmp_path / "file" / "c.bib").write_text("")
    deny_write(monkeypatch, ro, tmp_path / "file" / "c.bib")
    target = {"folder": tmp_path / "folder" / "c.bib", "read-only file": tmp_path / "file" / "c.bib",
              "read-only folder": ro / "c.bib", "missing folder in a read-only one": ro / "new" / "c.bib",
              "folder under a file": plain / "new" / "c.bib"}[case]
    with pytest.raises(StorageError, match=message) as raised:
        check_writable(target)
    assert "\n" not in str(raised.value) and "nothing was changed" in str(raised.value)


def test_check_writable_names_the_real_file_behind_a_link(linked, monkeypatch):
    link, real = linked
    deny_write(monkeypatch, real)
    with pytest.raises(StorageError, match=rf"c\.bib \(a link to {real}\): the file is read-only"):
        check_writable(link)


def test_a_dry_run_lock_creates_nothing_even_in_a_read_only_folder(tmp_path, monkeypatch):
    path = tmp_path / "c.bib"
    path.write_bytes(b"old\n")
    deny_write(monkeypatch, tmp_path)
    with locked(path, create=False):
        assert path.read_bytes() == b"old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["c.bib"]
    with pytest.raises(StorageError, match="read-only"):
        check_writable(path)  # what a dry run reports, still without writing
