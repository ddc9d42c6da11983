"""Hostile file systems for tests: small disks that fill up.

A small disk is a tmpfs mount, which needs root (and a kernel that lets this process mount);
tests that need one are skipped, saying why, where that is refused.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["fill", "tmpfs"]


@contextlib.contextmanager
def tmpfs(size: str) -> Iterator[Path]:
    """A new tmpfs of `size` (`"1m"`), mounted on a new folder; skips where mounting fails."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    folder = Path(tempfile.mkdtemp(prefix="eventvault-test-"))
    try:
        try:
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)],
                check=True,
                capture_output=True,
                text=True,
            )
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", "") or exc
            pytest.skip(f"this process may not mount a tmpfs: {detail}")
        try:
            yield folder
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def fill(folder: Path, leave: int) -> Path:
    """Fill the disk that holds `folder` with a file, leaving about `leave` bytes free.

    Returns:
        The file: remove it to give the space back.
    """
    stats = os.statvfs(folder)
    filler = folder / "filler"
    filler.write_bytes(b"\0" * max(0, stats.f_bavail * stats.f_frsize - leave))
    return filler
