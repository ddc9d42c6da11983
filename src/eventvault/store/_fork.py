"""Stores across `os.fork()`: what each open store does before a fork, and after it.

A child process starts with a copy of its parent's memory but only the thread that forked: a
lock another thread held at that moment stays held in the child forever, and a database
connection is shared with the parent's. So every store keeps a `ForkGuard`. Before the fork the
guard lets the store's operations in flight finish and holds new ones back, so that the child's
copy is consistent (no half-applied append, no connection in the middle of a statement); after
it, the parent carries on, and the child rebuilds the store with locks and connections of its
own (or refuses to use it, for an engine that cannot). See docs/concepts.md, "Processes and
fork()".

Handlers run for `os.fork()` and `multiprocessing`'s fork start method, not for `subprocess`,
which execs a new program at once.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable

from eventvault.store.notify import reset_shared_notifiers

__all__ = ["ForkGuard", "keep_forever"]

Hook = Callable[[], None]


class ForkGuard:
    """What a store does around a fork; kept by the store, forgotten with it.

    Args:
        after_in_child: rebuilds the store in the child (or marks it unusable there).
        before: waits for the store's operations in flight and holds new ones back; called in
            the forking thread just before the fork.
        after_in_parent: lets the held operations go on; called in the parent after the fork
            (only when `before` was given and returned).
    """

    __slots__ = ("__weakref__", "after_in_child", "after_in_parent", "before")

    def __init__(
        self,
        *,
        after_in_child: Hook,
        before: Hook | None = None,
        after_in_parent: Hook | None = None,
    ) -> None:
        self.after_in_child = after_in_child
        self.before = before
        self.after_in_parent = after_in_parent
        with _state.lock:
            _state.guards.add(self)


class _State:
    """The process's guards, and those whose `before` ran for the fork under way."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.guards: weakref.WeakSet[ForkGuard] = weakref.WeakSet()
        self.paused: list[ForkGuard] = []
        # What a child inherited and must never close while it runs (database connections
        # shared with the parent): closing them would act on the parent's sessions.
        self.kept: list[object] = []


_state = _State()


def keep_forever(*objects: object) -> None:
    """Keep objects referenced for the rest of this process's life, so they are never closed.

    A forked child calls this with the connections it inherited from its parent.
    """
    _state.kept.extend(objects)


def _guards() -> list[ForkGuard]:
    with _state.lock:
        return list(_state.guards)


def _before() -> None:
    _state.paused = []
    for guard in _guards():
        if guard.before is not None:
            guard.before()
            _state.paused.append(guard)


def _after_in_parent() -> None:
    paused, _state.paused = _state.paused, []
    for guard in reversed(paused):
        if guard.after_in_parent is not None:
            guard.after_in_parent()


def _after_in_child() -> None:
    # Another thread of the parent may have held the registry's lock: it is gone here.
    _state.lock = threading.Lock()
    _state.paused = []
    reset_shared_notifiers()
    for guard in _guards():
        guard.after_in_child()


if hasattr(os, "register_at_fork"):  # POSIX: there is no fork() elsewhere
    os.register_at_fork(
        before=_before, after_in_parent=_after_in_parent, after_in_child=_after_in_child
    )
