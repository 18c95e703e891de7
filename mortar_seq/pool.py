"""Values reserved in blocks and handed out from memory: the state behind PooledSequence.

One pool per engine and counter, in this process only: a child process after ``fork()``
starts with none, so it never hands out its parent's values.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from weakref import WeakKeyDictionary

from sqlalchemy.engine import Engine


class Pool:
    """Values reserved for this process and not handed out yet, and the last one that was."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.available: deque[int] = deque()
        self.last: int | None = None

    def take_one(self, reserve: Callable[[int], Sequence[int]]) -> int:
        """Hand out one value, reserving more with *reserve(1)* when none is left."""
        with self.lock:
            if not self.available:
                self.available.extend(reserve(1))
            self.last = value = self.available.popleft()
            return value

    def take(self, count: int, reserve: Callable[[int], Sequence[int]]) -> list[int]:
        """Hand out *count* values, reserving more with *reserve(n)* when too few are left."""
        with self.lock:
            if len(self.available) < count:
                self.available.extend(reserve(count - len(self.available)))
            taken = [self.available.popleft() for _ in range(count)]
            self.last = taken[-1]
            return taken


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
