"""The library's own connections, beside the caller's and never taken from the caller's pool.

Some work cannot run on the caller's connection: pooled blocks and, on MariaDB, missing
rows and DDL are committed at once, and a lookup may need to see past the caller's
snapshot. Taking a second connection from the caller's pool while the caller holds one
waits for itself when that pool is exhausted (a pool of one, or as many busy threads as
connections). So each engine gets a side engine: the same dialect, URL and execution
options (``schema_translate_map`` included) over a pool of its own, made by
`Pool.recreate()` (same class, creator, ``connect_args``, size, timeouts and pool events
such as ``connect`` listeners). Side connections are held only for short transactions
that never wait for a pool, so a wait for one always ends.

Nothing global holds a side engine: its caller's engine does, and it goes with that engine,
closed by ``engine.dispose()`` or collected with an engine dropped without it.

Engine-level statement events (``before_cursor_execute`` and the like) are not copied:
listen on `side_engine(engine)` to see those statements.
"""

from __future__ import annotations

import os
import threading
import weakref
from weakref import WeakKeyDictionary, WeakSet

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import AssertionPool, SingletonThreadPool, StaticPool

# Pools whose second checkout is not an independent connection (an SQLite memory database
# lives in its one connection): there the library keeps using the caller's engine.
_SHARED_CONNECTION_POOLS = (StaticPool, SingletonThreadPool, AssertionPool)

_lock = threading.Lock()
# Weak both ways: the side's pool copies create_engine()'s listeners, which refer to the
# caller's engine, so a side held from here kept every dropped engine and its connections.
_sides: WeakKeyDictionary[Engine, weakref.ref[Engine]] = WeakKeyDictionary()
_side_engines: WeakSet[Engine] = WeakSet()  # each its own side


def side_engine(engine: Engine) -> Engine:
    """Return the engine whose connections the library uses beside *engine*'s caller."""
    found = _alive(engine)  # the hot path, without the lock
    if found is not None:
        return found
    if engine in _side_engines or isinstance(engine.pool, _SHARED_CONNECTION_POOLS):
        return engine
    with _lock:
        found = _alive(engine)
        if found is None:
            found = _made_for(engine)
            _sides[engine] = weakref.ref(found)
            _side_engines.add(found)
    return found


def _alive(engine: Engine) -> Engine | None:
    held = _sides.get(engine)
    return None if held is None else held()


def _made_for(engine: Engine) -> Engine:
    name = engine.logging_name
    side = Engine(
        engine.pool.recreate(),
        engine.dialect,
        engine.url,
        # The logging module keeps a logger per name for ever: never one per engine.
        logging_name=f"mortar_seq side of {name}" if name else "mortar_seq side",
        echo=engine.echo,
        hide_parameters=engine.hide_parameters,
        execution_options=engine.get_execution_options(),
    )
    # This listener is what holds the side engine: the caller's engine owns it, so a caller
    # dropped without dispose() is collected with its side (one reference cycle, as a
    # plain engine and its pool already are), and their connections close as a plain
    # engine's do.
    event.listen(engine, "engine_disposed", lambda _: side.dispose())
    return side


def _forget_after_fork() -> None:
    # As SQLAlchemy advises for a child process: leave the parent's connections unclosed
    # (closing them would end the parent's sessions) and start with new, empty pools.
    global _lock
    _lock = threading.Lock()
    for side in list(_side_engines):
        side.dispose(close=False)


os.register_at_fork(after_in_child=_forget_after_fork)
