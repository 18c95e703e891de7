"""Which sequences and templates agree with what each database stores: checked once per engine.

A process may reach several databases that store one name differently (a database per
tenant). A `Sequence` or `Template` object is only applied to a database that stores it
alike; the registry checks that on its first use there, and later uses cost one lookup here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol
from weakref import WeakKeyDictionary

from sqlalchemy.engine import Engine

from .db.binding import SessionLike, engine_of
from .errors import SequenceConfigError


class Entry(Protocol):
    """A `Sequence` or a `Template`: compared whole, known by its name."""

    @property
    def name(self) -> str: ...


Check = Callable[[SessionLike, Entry], None]

_lock = threading.Lock()
# Per engine and name, the object last found to agree with what its database stores.
_agreed: WeakKeyDictionary[Engine, dict[str, Entry]] = WeakKeyDictionary()
_NOTHING: dict[str, Entry] = {}  # never written
# The registry's check (`Registry.agree`), installed when the registry is made: it knows what
# each database stores, and it imports the modules that call this one.
_checks: list[Check] = []


def checked_by(check: Check) -> None:
    """Install *check*, which raises unless a database stores an entry as it is."""
    _checks[:] = [check]


def agree(session: SessionLike, entry: Entry) -> None:
    """Raise unless the database of *session* stores *entry* as it is (see `Registry.agree`).

    `SequenceConfigError` names both definitions; `UnknownSequence` if it stores no such name.
    """
    known = _agreed.get(engine_of(session), _NOTHING).get(entry.name)
    if known is not entry and known != entry:  # the hot path: an equal object agrees too
        if not _checks:
            raise SequenceConfigError(
                f"{entry.name!r}: take sequences and templates from the registry "
                "(register_sequence, get_sequence, register_template, get_template)"
            )
        _checks[0](session, entry)


def agreed(engine: Engine, entry: Entry) -> bool:
    """Tell whether *engine*'s database was found to store *entry* as it is."""
    known = _agreed.get(engine, _NOTHING).get(entry.name)
    return known is entry or known == entry


def remember(engine: Engine, entry: Entry) -> None:
    """Remember that *engine*'s database stores *entry* as it is."""
    with _lock:
        _agreed.setdefault(engine, {})[entry.name] = entry


def forget(engine: Engine, name: str) -> None:
    """Forget what agrees with *engine*'s database about *name*: the next use checks again."""
    with _lock:
        _agreed.get(engine, {}).pop(name, None)
