"""The files of a SQLite store: checks before opening, clean-up after a failed creation, the
words for a full disk or a read-only file, and the locks a forked child must hold itself.

A store is one database file with two files beside it while it is open in WAL mode: `-wal`
(the write-ahead log, committed transactions not yet copied into the database) and `-shm` (its
index in shared memory). SQLite creates both on first use and deletes them when the last
connection closes; https://www.sqlite.org/wal.html and walformat.html explain them.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
import urllib.parse
from dataclasses import dataclass
from typing import Final

from eventvault.errors import (
    NotAnEventVaultDatabaseError,
    ReadOnlyStoreError,
    StorageError,
    StoreNotFoundError,
)

__all__ = [
    "CreatedFile",
    "check_store_file",
    "claim_file",
    "describe_full",
    "describe_read_only",
    "folder_of",
    "hold_reader_locks",
    "read_only_cause",
    "read_only_uri",
    "wal_holds_frames",
]

_FILE_MODE: Final = 0o644
"""The mode SQLite gives the files it creates (before the umask)."""
_WAL_HEADER: Final = 32
"""Bytes of a -wal file's header; a log with no more than that holds no transaction."""
# Where SQLite's unix VFS takes its POSIX locks (os_unix.c): a reader's SHARED lock on the
# database file covers bytes SHARED_FIRST .. SHARED_FIRST + SHARED_SIZE - 1, and every process
# that uses the -shm file holds a shared lock on its "dead man switch" byte.
_SHARED_FIRST: Final = 0x40000000 + 2
_SHARED_SIZE: Final = 510
_SHM_DMS: Final = 128


def folder_of(path: str) -> str:
    """The folder a file path is in, as the user would write it."""
    return os.path.dirname(path) or "."


def _unreachable(path: str) -> str | None:
    """The first folder on the way to `path` that cannot be searched (lacks the x permission)."""
    folder = os.path.dirname(os.path.abspath(path))
    ancestors = []
    while True:
        ancestors.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    for ancestor in reversed(ancestors):
        if not os.access(ancestor, os.X_OK, effective_ids=os.access in os.supports_effective_ids):
            return ancestor
    return None


def describe_denied(path: str, *, creating: bool) -> str:
    """Why the system denied access to a store's file, naming the folder at fault."""
    hidden = _unreachable(path)
    if hidden is not None:
        return (
            f"permission denied: the folder {hidden!r} cannot be searched (it lacks the x "
            f"permission), so {path!r} cannot be reached"
        )
    folder = folder_of(path)
    if creating and not os.access(folder, os.W_OK):
        return (
            f"permission denied: the folder {folder!r} is not writable, so the store file "
            f"{os.path.basename(path)!r} cannot be created in it"
        )
    return f"permission denied: {path!r} cannot be read"


def _missing_folder(path: str) -> str:
    """The message for a path whose folder does not exist (or is a file)."""
    folder = folder_of(path)
    missing = folder
    while True:
        parent = os.path.dirname(missing)
        if not parent or os.path.isdir(parent):
            break
        missing = parent
    if os.path.exists(missing):
        return f"{missing!r} is a file, not a folder, so {path!r} cannot be created"
    return (
        f"the folder {folder!r} does not exist ({missing!r} is missing); create it first "
        f"(mkdir -p {folder}) or choose another path"
    )


def _folder_error(path: str) -> NotAnEventVaultDatabaseError:
    return NotAnEventVaultDatabaseError(
        path,
        f"it is a folder (a directory); name a file in it, such as {os.path.join(path, 'eventvault.db')!r}",
    )


@dataclass(frozen=True, slots=True)
class CreatedFile:
    """A database file this process created, empty, for a new store.

    Attributes:
        path: the file.
        device: its device number.
        inode: its inode number: the file is removed only while it is still this one.
    """

    path: str
    device: int
    inode: int

    def remove_if_empty(self) -> None:
        """Remove the file (and the files SQLite made beside it) if it is still the file this
        process created and holds nothing: a first write that failed leaves no empty store."""
        try:
            info = os.stat(self.path)
        except OSError:
            return
        if (info.st_dev, info.st_ino) != (self.device, self.inode) or info.st_size != 0:
            return
        for name in (self.path, f"{self.path}-journal", f"{self.path}-wal", f"{self.path}-shm"):
            try:
                os.unlink(name)
            except OSError:
                continue


def claim_file(path: str, location: str) -> CreatedFile | None:
    """Check the path of a store opened for writing, creating its file when it does not exist.

    Creating the file here (rather than leaving it to SQLite) tells whether this process made
    it, so that a store whose creation fails removes only a file it created.

    Args:
        path: the database file.
        location: the store's URL, for messages.

    Returns:
        The created file, or None when the file exists.

    Raises:
        NotAnEventVaultDatabaseError: the path is a folder.
        ReadOnlyStoreError: the folder is on a read-only file system.
        StorageError: the folder does not exist, or access is denied.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _FILE_MODE)
    except FileExistsError:
        if os.path.isdir(path):
            raise _folder_error(path) from None
        return None
    except IsADirectoryError:
        raise _folder_error(path) from None
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise StorageError(
            f"cannot create the store {location!r}: {_missing_folder(path)}"
        ) from exc
    except PermissionError as exc:
        raise StorageError(
            f"cannot create the store {location!r}: {describe_denied(path, creating=True)}"
        ) from exc
    except OSError as exc:
        if exc.errno == errno.EROFS:
            raise ReadOnlyStoreError(
                location,
                f"the folder {folder_of(path)!r} is on a read-only file system, so the store "
                "cannot be created there",
            ) from exc
        raise StorageError(f"cannot create the store {location!r}: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
    finally:
        os.close(fd)
    return CreatedFile(path, info.st_dev, info.st_ino)


def check_store_file(path: str, location: str) -> None:
    """Check that the file of a store opened read-only is there and could be a store.

    Args:
        path: the database file.
        location: the store's URL, for messages.

    Raises:
        StoreNotFoundError: the file does not exist.
        NotAnEventVaultDatabaseError: the path is a folder or an empty file.
        StorageError: access is denied (naming the folder that cannot be searched).
    """
    try:
        info = os.stat(path)
        if stat.S_ISREG(info.st_mode):
            with open(path, "rb") as file:
                file.read(16)
    except FileNotFoundError:
        raise StoreNotFoundError(location, path) from None
    except NotADirectoryError as exc:
        raise StorageError(f"cannot open the store {location!r}: {_missing_folder(path)}") from exc
    except PermissionError as exc:
        raise StorageError(
            f"cannot open the store {location!r}: {describe_denied(path, creating=False)}"
        ) from exc
    if stat.S_ISDIR(info.st_mode):
        raise _folder_error(path)
    if info.st_size == 0:
        raise NotAnEventVaultDatabaseError(
            path,
            "it is an empty file (0 bytes), not an eventvault store; a store is created by "
            "writing to it (`eventvault append`, `import`)",
        )


def read_only_uri(path: str, *, immutable: bool) -> str:
    """The SQLite URI that opens a file for reading only.

    `mode=ro` reads a WAL database as any reader does, seeing other processes' commits; it needs
    the -shm file to exist, or the folder to be writable so that SQLite can create it.
    `immutable=1` reads the file alone, with no locks and no -wal or -shm: only right when
    nothing can write the file, and only when its -wal holds no transaction.
    """
    query = "mode=ro&immutable=1" if immutable else "mode=ro"
    return f"file:{urllib.parse.quote(path)}?{query}"


def wal_holds_frames(path: str) -> bool:
    """Whether the store's -wal file holds committed transactions not yet in the database."""
    try:
        return os.path.getsize(f"{path}-wal") > _WAL_HEADER
    except OSError:
        return False


def _free_bytes(path: str) -> int | None:
    try:
        info = os.statvfs(folder_of(path))
    except OSError:
        return None
    return info.f_bavail * info.f_frsize


def describe_full(path: str, message: str) -> str:
    """What is full when SQLite answers SQLITE_FULL, and what to do about it."""
    free = _free_bytes(path)
    if free is not None and free < 1024 * 1024:
        where = f"the disk that holds {folder_of(path)!r} is full ({free} bytes free)"
        advice = "free space on it, or move the store to a disk with room, and retry"
    else:
        where = "the database reached the largest size SQLite may give it (PRAGMA max_page_count)"
        if free is not None:
            where += f", although its disk has {free} bytes free"
        advice = "raise the limit, or start a new store, and retry"
    return f"{where} ({message}); nothing of the write that failed was stored; {advice}"


def read_only_cause(path: str) -> str | None:
    """Why a store's file cannot be written, when the file system says so: a read-only mount,
    a folder or a file without write permission. None when nothing there forbids writing."""
    folder = folder_of(path)
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f"it is on a read-only file system ({folder!r})"
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return (
            f"its folder {folder!r} is not writable, so SQLite cannot create the files it keeps "
            f"beside it ({os.path.basename(path)}-wal, -shm)"
        )
    if os.path.exists(path) and not os.access(path, os.W_OK):
        return f"the file {path!r} is not writable"
    return None


def describe_read_only(path: str, code: int, message: str) -> str:
    """Why SQLite refused to write a store (SQLITE_READONLY, or SQLITE_CANTOPEN where the
    file system forbids writing), and what to do."""
    cause = read_only_cause(path)
    if cause is None:
        cause = (
            f"its folder {folder_of(path)!r} is not writable"
            if code == sqlite3.SQLITE_READONLY_DIRECTORY
            else "SQLite refused to write it"
        )
    return f"{cause} ({message}); it can be opened with read_only=True to read it"


_held: dict[tuple[int, int], int] = {}
_held_descriptors: list[int] = []


def hold_reader_locks(path: str) -> None:
    """Take, for this process, the POSIX locks an open reader of the store holds, once per
    file and process.

    In a forked child, SQLite inherits its parent's bookkeeping of the locks it holds on a file
    (per file, per process), but not the locks: the kernel gives a child none. A connection the
    child opens then believes the database file's SHARED lock and the -shm file's lock are
    already held and takes neither, so the parent, closing its last connection, could delete
    the -wal and -shm files the child is still using and lose its writes. Holding the locks here
    closes that gap. The descriptors stay open for the life of the process: closing any
    descriptor of a file drops every POSIX lock the process holds on it.

    Raises:
        OSError: a file cannot be opened or locked.
    """
    import fcntl  # POSIX only, as fork() is

    info = os.stat(path)
    key = (info.st_dev, info.st_ino)
    if _held.get(key) == os.getpid():
        return
    database = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    _held_descriptors.append(database)
    fcntl.lockf(database, fcntl.LOCK_SH, _SHARED_SIZE, _SHARED_FIRST, os.SEEK_SET)
    try:
        shm = os.open(f"{path}-shm", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        pass
    else:
        _held_descriptors.append(shm)
        fcntl.lockf(shm, fcntl.LOCK_SH, 1, _SHM_DMS, os.SEEK_SET)
    _held[key] = os.getpid()
