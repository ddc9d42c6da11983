"""Responses that stream: NDJSON reads a page at a time, and subscriptions as Server-Sent Events.

Nothing here holds a whole response: a read yields one chunk per page of the store's iterator
(its next page is fetched in a worker thread while the previous one is sent), and a
subscription one chunk per batch of events. A client that stops reading makes the server's
`send` wait (uvicorn's flow control), which makes the generator wait in turn, so a slow client
costs a page of memory, never more.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Final, TypeVar

import msgspec
from starlette.concurrency import run_in_threadpool

from eventvault.errors import EventVaultError
from eventvault.server.errors import problem_for
from eventvault.store.aio import AsyncSubscription
from eventvault.store.base import DEFAULT_PAGE_SIZE
from eventvault.store.http.wire import deep_safe
from eventvault.types import RecordedEvent

__all__ = ["HEARTBEAT", "first_page", "ndjson_pages", "sse_events"]

T = TypeVar("T")
HEARTBEAT: Final = b": heartbeat\n\n"
_encode = deep_safe(msgspec.json.encode)
logger = logging.getLogger("eventvault.server")


def _page(iterator: Iterator[T], size: int) -> list[T]:
    return list(itertools.islice(iterator, size))


async def first_page(iterator: Iterator[T]) -> list[T]:
    """The first page of a read, fetched before the response starts, so that a read that
    fails at once (the store unavailable) gets its own status instead of a cut stream."""
    return await run_in_threadpool(_page, iterator, DEFAULT_PAGE_SIZE)


async def ndjson_pages(
    first: list[T],
    iterator: Iterator[T],
    encode: Callable[[T], bytes] = _encode,
    on_page: Callable[[int], None] | None = None,
) -> AsyncIterator[bytes]:
    """The lines of a read, one chunk per page, each page fetched in a worker thread.

    A failure after the response started cannot change its status: the stream then ends with
    one line holding the problem detail (`{"type": ..., "status": ...}`), which clients raise.
    """
    page = first
    while page:
        if on_page is not None:
            on_page(len(page))
        yield b"\n".join(map(encode, page)) + b"\n"
        if len(page) < DEFAULT_PAGE_SIZE:
            return
        try:
            page = await run_in_threadpool(_page, iterator, DEFAULT_PAGE_SIZE)
        except EventVaultError as exc:
            logger.warning("a read failed after its response started: %s", exc)
            yield _encode(problem_for(exc)) + b"\n"
            return


async def sse_events(
    subscription: AsyncSubscription,
    position_of: Callable[[RecordedEvent], int],
    heartbeat: float,
    closing: asyncio.Event,
    on_batch: Callable[[int], None] | None = None,
) -> AsyncIterator[bytes]:
    """A subscription as Server-Sent Events: `id:` the event's position, `data:` the event.

    A comment line (`: heartbeat`) goes out whenever `heartbeat` seconds pass without an event,
    so clients and proxies see that the connection is alive; the stream ends when `closing` is
    set (the server shuts down) or the client goes away (the response is cancelled).
    """
    try:
        yield b": subscribed\n\n"
        while not closing.is_set():
            batch = await subscription.next_batch(timeout=heartbeat)
            if not batch:
                if subscription.closed:
                    return
                yield HEARTBEAT
                continue
            if on_batch is not None:
                on_batch(len(batch))
            yield b"".join(
                b"id: %d\ndata: %s\n\n" % (position_of(event), _encode(event)) for event in batch
            )
    finally:
        subscription.close()
