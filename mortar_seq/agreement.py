"""Which sequences and templates agree with what each database stores: checked once per engine.

A process may reach several databases that store one name differently (a database per
tenant). A `Sequence` or `Template` object is only applied to a database that stores it
alike; the registry checks that on its first use there, and later uses cost one lookup here.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from sqlalchemy.engine import Engine

from .binding import SessionLike, engine_of

if TYPE_CHECKING:  # both import this module
    from .sequence import Sequence
    from .template import Template

_lock = threading.Lock()
# Per engine and name, the object last found to agree with what its database stores.
_agreed: WeakKeyDictionary[Engine, dict[str, Sequence | Template]] = WeakKeyDictionary()
_NOTHING: dict[str, Sequence | Template] = {}  # never written


def agree(session: SessionLike, entry: Sequence | Template) -> None:
    """Raise unless the database of *session* stores *entry* as it is (see `Registry.agree`).

    `SequenceConfigError` names both definitions; `UnknownSequence` if it stores no such name.
    """
    known = _agreed.get(engine_of(session), _NOTHING).get(entry.name)
    if known is not entry and known != entry:  # the hot path: an equal object agrees too
        # Imported here: the registry imports the modules that call this one.
        from . import registry as registry_module

        registry_module.registry.agree(session, entry)


def agreed(engine: Engine, entry: Sequence | Template) -> bool:
    """Tell whether *engine*'s database was found to store *entry* as it is."""
    known = _agreed.get(engine, _NOTHING).get(entry.name)
    return known is entry or known == entry


def remember(engine: Engine, entry: Sequence | Template) -> None:
    """Remember that *engine*'s database stores *entry* as it is."""
    with _lock:
        _agreed.setdefault(engine, {})[entry.name] = entry


def forget(engine: Engine, name: str) -> None:
    """Forget what agrees with *engine*'s database about *name*: the next use checks again."""
    with _lock:
        _agreed.get(engine, {}).pop(name, None)
