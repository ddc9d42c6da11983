"""Hostile file systems for tests: folders a user may not write or search, read-only mounts,
small disks that fill up.

Tests run as root in CI, and root ignores file permissions: a check of what a user without
write permission sees runs, as root, in a forked child that drops to the unprivileged user
`nobody`. Read-only mounts and small disks are tmpfs mounts, which need root (and a kernel that
lets this process mount); tests that need one are skipped, saying why, where that is refused.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")

NOBODY = 65534


@contextlib.contextmanager
def shared_folder() -> Iterator[Path]:
    """A new folder every user can reach (pytest's tmp_path is private to its owner)."""
    folder = Path(tempfile.mkdtemp(prefix="eventvault-test-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for path in [folder, *folder.rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(folder, ignore_errors=True)


def as_unprivileged(work: Callable[[], T]) -> T:
    """Run `work` where file permissions apply, and return what it returns.

    As any user but root, `work` runs here. As root, it runs in a forked child that becomes
    `nobody`; it must return something picklable, and use only modules already imported (the
    interpreter's own files may be out of nobody's reach).
    """
    if os.geteuid() != 0:
        return work()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(reader)
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            payload = pickle.dumps(("ok", work()))
        except BaseException as exc:
            payload = pickle.dumps(("error", f"{type(exc).__name__}: {exc}"))
        with os.fdopen(writer, "wb") as out:
            out.write(payload)
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as incoming:
        data = incoming.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    outcome, value = pickle.loads(data)
    if outcome == "error":
        raise AssertionError(f"the unprivileged check failed: {value}")
    result: T = value
    return result


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def tmpfs(size: str) -> Iterator[Path]:
    """A new tmpfs of `size` (`"1m"`), mounted on a shared folder; skips where mounting fails."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    with shared_folder() as folder:
        try:
            _mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder))
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", "") or exc
            pytest.skip(f"this process may not mount a tmpfs: {detail}")
        try:
            yield folder
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)


def remount_read_only(mount_point: Path) -> None:
    """Make a tmpfs from `tmpfs()` read-only."""
    _mount("-o", "remount,ro", str(mount_point))


def fill(folder: Path, leave: int) -> Path:
    """Fill the disk that holds `folder` with a file, leaving about `leave` bytes free.

    Returns:
        The file: remove it to give the space back.
    """
    stats = os.statvfs(folder)
    filler = folder / "filler"
    filler.write_bytes(b"\0" * max(0, stats.f_bavail * stats.f_frsize - leave))
    return filler
