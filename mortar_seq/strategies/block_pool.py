"""Values reserved in blocks and handed out from memory: the state behind PooledSequence.

One pool per engine and counter, in this process only: a child process after ``fork()``
starts with none, so it never hands out its parent's values.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy.engine import Engine
from sqlalchemy.util.concurrency import await_only, greenlet_spawn, in_greenlet

Reserve = Callable[[int], Sequence[int]]  # reserve(n): at least n new values, in order
T = TypeVar("T")


class Pool:
    """Values reserved for this process and not handed out yet, and the last one that was.

    The lock guards memory only, never I/O: under ``AsyncSession.run_sync`` every task runs
    on the event loop's thread, and a task reserving a block hands that thread back to the
    loop while it waits for the database, so a lock held meanwhile would freeze the loop.
    One reservation runs at a time; others wait for it as their context allows (a thread
    blocks, a task awaits), so blocks arrive in order and values handed out keep increasing.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.available: deque[int] = deque()
        self.last: int | None = None
        self.refill: _Refill | None = None  # the reservation under way, if any

    def pop_one(self) -> int | None:
        """Hand out one value from memory; None if none is left (then see `take`)."""
        with self.lock:
            if self.available:
                self.last = value = self.available.popleft()
                return value
        return None

    def pop(self, count: int) -> list[int] | None:
        """Hand out *count* values from memory; None if too few are left (then see `take`)."""
        with self.lock:
            if len(self.available) >= count:
                return self._pop(count)
        return None

    def take(self, count: int, reserve: Reserve) -> list[int]:
        """Hand out *count* values, reserving more with *reserve(n)* when too few are left.

        Check the caller's connection out first, before waiting for anyone: whoever
        reserves must never wait for a connection of the caller's pool while others, holding
        connections of that pool, wait for the reservation.
        """
        while True:
            with self.lock:
                if len(self.available) >= count:
                    return self._pop(count)
                under_way = self.refill
                if under_way is not None:
                    wait = under_way.waiter()
                else:
                    # Ours: what is left is ours too, so that what *reserve* returns (values
                    # taken in the caller's own transaction, at times) goes to us alone.
                    self.refill = mine = _Refill()
                    claimed = list(self.available)
                    self.available.clear()
                    break
            wait()
        return self._refilled(mine, claimed, count, reserve)

    def _pop(self, count: int) -> list[int]:
        taken = [self.available.popleft() for _ in range(count)]
        self.last = taken[-1]
        return taken

    def _refilled(
        self, mine: _Refill, claimed: list[int], count: int, reserve: Reserve
    ) -> list[int]:
        missing = count - len(claimed)
        try:
            reserved = reserve(missing)
        except BaseException:
            with self.lock:
                self.available.extendleft(reversed(claimed))
                self.refill = None
            mine.done()
            raise
        with self.lock:
            self.available.extend(reserved[missing:])
            self.refill = None
            taken = claimed + list(reserved[:missing])
            self.last = taken[-1]
        mine.done()
        return taken


class _Refill:
    """A reservation under way, and how to wake those who wait for it."""

    def __init__(self) -> None:
        self.finished = threading.Event()
        self.wakers: list[Callable[[], object]] = []

    def waiter(self) -> Callable[[], object]:
        """Return how to wait until `done` (call under the pool's lock, wait outside it)."""
        if not _in_greenlet():
            return self.finished.wait
        # A task on an event loop: its thread is the loop's, so await rather than block.
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not future.done():  # cancelled meanwhile
                future.set_result(None)

        self.wakers.append(lambda: loop.call_soon_threadsafe(wake))
        return lambda: await_only(future)

    def done(self) -> None:
        self.finished.set()
        for waker in self.wakers:
            with suppress(RuntimeError):  # that loop is closed: nobody waits there any more
                waker()


def to_completion(work: Callable[[], T]) -> T:
    """Return ``work()``; on an event loop, let it finish even if the calling task is
    cancelled meanwhile, and raise the cancellation once it has.

    For the library's own short transactions: SQLAlchemy invalidates a connection whose
    statement a cancellation cut short, and aiosqlite then closes it with that statement
    unfinished, which SQLite keeps open, its locks with it, until the statement is garbage
    collected: meanwhile every commit on the database waits out its busy timeout and fails.
    """
    if not _in_greenlet():
        return work()
    return await_only(_completed(work))


async def _completed(work: Callable[[], T]) -> T:
    task = asyncio.create_task(greenlet_spawn(work))  # a task of its own: cancelled apart
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait((task,))  # returns when it is done, whatever its outcome
        except asyncio.CancelledError as exc:
            cancelled = exc
    if cancelled is None:
        return task.result()
    if not task.cancelled():
        task.exception()  # read, so that asyncio does not report it: the cancellation wins
    raise cancelled


def _in_greenlet() -> bool:
    try:
        return in_greenlet()
    except ImportError:  # no greenlet installed (SQLAlchemy 2.1): no event loop bridge either
        return False


_lock = threading.Lock()
_pools: WeakKeyDictionary[Engine, dict[tuple[str, str], Pool]] = WeakKeyDictionary()


def pool_for(engine: Engine, name: str, key: str) -> Pool:
    """Return this process's pool for counter (*name*, *key*) of *engine*'s database."""
    found = _pools.get(engine, {}).get((name, key))  # the hot path, without the lock
    if found is not None:
        return found
    with _lock:
        return _pools.setdefault(engine, {}).setdefault((name, key), Pool())


def drop(engine: Engine, name: str) -> None:
    """Forget the pools of sequence *name* (all its counters): it was deleted."""
    with _lock:
        counters = _pools.get(engine, {})
        for counter in [counter for counter in counters if counter[0] == name]:
            del counters[counter]


def _forget_after_fork() -> None:
    global _lock, _pools
    _lock = threading.Lock()
    _pools = WeakKeyDictionary()


os.register_at_fork(after_in_child=_forget_after_fork)
