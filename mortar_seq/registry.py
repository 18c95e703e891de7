"""The registry: sequence names mapped to their implementations, in this process and stored."""

from __future__ import annotations

import threading
from typing import Any, TypeVar, cast
from weakref import WeakKeyDictionary

from sqlalchemy.engine import Engine

from . import agreement
from .db.binding import SessionLike, check_session, connected_dialect, engine_of
from .definition import NAME_MAX, Definition, check_name, define
from .errors import SequenceConfigError, TemplateError, UnknownSequence
from .model import StoredSequence
from .patterns.pattern import parse
from .sequence import Sequence
from .storage import Stored, children, counter_keys, create_missing, delete, load
from .strategies import stored_strategy, strategy_for, strategy_options
from .template import Template, forget_counters

Entry = TypeVar("Entry", Sequence, Template)


class Registry:
    """Names mapped to sequences: registered in this process, and stored by each database."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._registered: dict[str, Sequence] = {}
        self._templates: dict[str, Template] = {}
        # Per engine, never promoted to this process's registrations: two databases may
        # store one name differently (a database per tenant).
        self._stored: WeakKeyDictionary[Engine, dict[str, Sequence | Template]] = (
            WeakKeyDictionary()
        )

    def register(
        self,
        name: str,
        session: SessionLike,
        impl: object = None,
        *,
        start: int = 1,
        step: int = 1,
        reset: int | None = None,
    ) -> Sequence:
        """Create the sequence where missing, record it here, return it: `register_sequence`."""
        wanted = Sequence(define(name, start, step, reset), strategy_for(impl))
        wanted.strategy.check(connected_dialect(session), wanted.definition)
        self._refuse_registered(wanted, self._registered, self._templates, "a template")
        _refuse_conflict(self.stored(session, wanted.name, create=wanted), wanted, "stored")
        self._record(self._registered, wanted)
        agreement.remember(engine_of(session), wanted)
        return wanted

    def get(self, name: str, session: SessionLike | None = None) -> Sequence:
        """Return the sequence registered here as *name*, else, given a session, the stored one.

        Given a session, a registered sequence must agree with what its database stores.
        """
        check_name(name)
        with self._lock:
            found = self._registered.get(name)
            if name in self._templates:
                raise UnknownSequence(name, ": it is a template (use get_template)")
        if found is not None:
            if session is not None:
                self.agree(session, found)
            return found
        if session is None:
            raise UnknownSequence(name, " registered in this process")
        return self.stored(session, name)

    def stored(
        self,
        session: SessionLike,
        name: str,
        *,
        create: Sequence | None = None,
        repair: bool = False,
        nowait: bool = False,
        missing: str = "",
    ) -> Sequence:
        """Return the sequence *name* as the database of *session* stores it.

        With *create*, a missing sequence is created as *create* says, race-free; *repair*
        also recreates its counter. What a database stores is remembered per engine, so
        that steady use costs no lookup. *missing* ends the message of an unknown name.
        """
        check_name(name)
        engine = engine_of(session)
        with self._lock:
            known = self._stored.get(engine, {}).get(name)
        if isinstance(known, Sequence) and not repair:
            return known
        if isinstance(known, Template) and create is None:
            raise UnknownSequence(name, ": it is a template (use get_template)")
        row = load(session, name)
        if row is None and create is not None:
            # The strategy's objects (counter row, SEQUENCE) first: whoever sees the stored
            # row may use them at once, even where each is created in a transaction of its own.
            create.strategy.create(session, create.definition, nowait=nowait)
            row = _store(session, _stored_row(create), nowait=nowait)
        if row is None:
            raise UnknownSequence(name, missing)
        if row.pattern is not None:
            if create is not None:
                raise SequenceConfigError(f"{name!r} is already stored as a template")
            raise UnknownSequence(name, ": it is a template (use get_template)")
        found = Sequence(
            Definition(name, row.start, row.step, row.reset), stored_strategy(row.impl, row.options)
        )
        if create is not None and repair:
            found.strategy.create(session, found.definition, nowait=nowait)
        with self._lock:
            self._stored.setdefault(engine, {})[name] = found
        agreement.remember(engine, found)
        return found

    def forget(self, session: SessionLike, name: str) -> None:
        """Forget what the database of *session* stores about *name*; the next use looks again."""
        engine = engine_of(session)
        with self._lock:
            self._stored.get(engine, {}).pop(name, None)
        agreement.forget(engine, name)

    def agree(self, session: SessionLike, entry: Sequence | Template) -> None:
        """Raise `SequenceConfigError` unless the database of *session* stores *entry* alike.

        A definition is never applied to a database that stores its name otherwise (a
        database per tenant): its values there would follow settings the database does not
        have. A name the database does not store raises `UnknownSequence`: registering it
        there creates it, using an object never does. Checked once per engine (and again
        after `forget`), so that steady use costs no lookup.
        """
        engine = engine_of(session)
        if agreement.agreed(engine, entry):
            return
        stored: Sequence | Template
        here = " in this database"
        if isinstance(entry, Template):
            stored = self._stored_template(session, entry.name, here)
        else:
            stored = self.stored(session, entry.name, missing=here)
        had, wanted = _described(stored), _described(entry)
        differ = [key for key in dict.fromkeys([*wanted, *had]) if had.get(key) != wanted.get(key)]
        if differ:
            ours = ", ".join(f"{key}={wanted[key]!r}" for key in differ if key in wanted)
            theirs = ", ".join(f"{key}={had[key]!r}" for key in differ if key in had)
            lookup = "get_template" if isinstance(entry, Template) else "get_sequence"
            raise SequenceConfigError(
                f"{entry.name!r} {self._origin(entry)} with {ours}, but database "
                f"{_shown(engine)} stores {theirs}: its values there would follow settings "
                "that database does not have; store it alike in every database, or leave it "
                f"unregistered and use each database's own, {lookup}({entry.name!r}, session)"
            )
        agreement.remember(engine, entry)

    def _origin(self, entry: Sequence | Template) -> str:
        """Say where *entry* comes from, for messages."""
        with self._lock:
            if entry in (self._registered.get(entry.name), self._templates.get(entry.name)):
                return "is registered in this process"
            for engine, entries in self._stored.items():
                if entries.get(entry.name) is entry:
                    return f"is stored in database {_shown(engine)}"
        return "is defined in this process"

    def delete(self, session: SessionLike, name: str) -> bool:
        """Delete *name* in the caller's transaction and forget it; tell whether it existed.

        A template that other stored templates name as their parent stays: `TemplateError`
        names them, and nothing is deleted.
        """
        check_session(session)
        check_name(name)
        row = load(session, name)
        if row is not None and row.pattern is not None:
            using = children(session, name)
            if using:
                named = ", ".join(repr(child) for child in using)
                raise TemplateError(
                    f"template {name!r} is the parent of {named}: delete the children first"
                )
        if row is not None:
            strategy = stored_strategy(row.impl, row.options)
            # A template's counters each have their own database objects (native ones).
            keys = {"", *counter_keys(session, name)} if row.pattern is not None else {""}
            for key in sorted(keys):
                strategy.delete(session, Definition(name, row.start, row.step, row.reset, key))
        existed = delete(session, name)
        with self._lock:
            self._registered.pop(name, None)
            self._templates.pop(name, None)
        self.forget(session, name)
        forget_counters(engine_of(session), name)
        return existed

    def register_template(
        self,
        name: str,
        pattern: str,
        session: SessionLike,
        *,
        start: int = 1,
        step: int = 1,
        impl: object = None,
    ) -> Template:
        """Store template *name* where missing, record it here, return it: `register_template`."""
        settings = define(name, start, step)
        strategy = strategy_for(impl)
        strategy.check(connected_dialect(session), settings)
        parsed = parse(pattern, settings.name, lambda field: self._is_template(session, field))
        parent = None if parsed.parent is None else self.get_template(parsed.parent, session)
        wanted = Template(settings.name, parsed, settings.start, settings.step, strategy, parent)
        self._refuse_registered(wanted, self._templates, self._registered, "a sequence")
        row = load(session, wanted.name)
        if row is None:
            row = _store(session, _stored_template(wanted), nowait=False)
        if row is None:
            raise UnknownSequence(wanted.name, " (deleted while being registered)")
        stored = self._template_from(session, wanted.name, row, registering=True)
        _refuse_conflict(stored, wanted, "stored")
        self._record(self._templates, wanted)
        agreement.remember(engine_of(session), wanted)
        return wanted

    def _refuse_registered(
        self, wanted: Entry, same: dict[str, Entry], other: dict[str, Any], other_kind: str
    ) -> None:
        """Refuse *wanted* before anything is written if this process has *name* otherwise."""
        with self._lock:
            if wanted.name in other:
                raise SequenceConfigError(f"{wanted.name!r} is already registered as {other_kind}")
            current = same.get(wanted.name)
        if current is not None:
            _refuse_conflict(current, wanted, "registered")

    def _record(self, entries: dict[str, Entry], wanted: Entry) -> None:
        """Record *wanted*, unless another thread recorded it differently meanwhile."""
        with self._lock:
            current = entries.setdefault(wanted.name, wanted)
        _refuse_conflict(current, wanted, "registered")

    def get_template(self, name: str, session: SessionLike | None = None) -> Template:
        """Return the template registered as *name*, or with *session* one stored elsewhere."""
        check_name(name)
        with self._lock:
            found = self._templates.get(name)
        if found is not None:
            if session is not None:
                self.agree(session, found)
            return found
        if session is None:
            raise UnknownSequence(name, " registered as a template in this process")
        return self._stored_template(session, name)

    def _stored_template(self, session: SessionLike, name: str, missing: str = "") -> Template:
        """Return template *name* as the database of *session* stores it, remembered per engine."""
        engine = engine_of(session)
        with self._lock:
            known = self._stored.get(engine, {}).get(name)
        if isinstance(known, Template):
            return known
        row = load(session, name)
        if row is None:
            raise UnknownSequence(name, missing)
        found = self._template_from(session, name, row)
        with self._lock:
            self._stored.setdefault(engine, {})[name] = found
        agreement.remember(engine, found)
        return found

    def _template_from(
        self, session: SessionLike, name: str, row: Any, *, registering: bool = False
    ) -> Template:
        if row.pattern is None:
            if registering:
                raise SequenceConfigError(f"{name!r} is already stored as a sequence")
            raise UnknownSequence(name, ": it is a sequence, not a template")
        parsed = parse(row.pattern, name, lambda field: field == row.parent)
        parent = None if row.parent is None else self.get_template(row.parent, session)
        strategy = stored_strategy(row.impl, row.options)
        return Template(name, parsed, row.start, row.step, strategy, parent)

    def _is_template(self, session: SessionLike, name: str) -> bool:
        with self._lock:
            if name in self._templates:
                return True
        if len(name) > NAME_MAX:
            return False
        row = load(session, name)
        return row is not None and row.pattern is not None


def _store(session: SessionLike, values: dict[str, Any], *, nowait: bool) -> Stored | None:
    """Store a definition found missing a moment ago; return what is stored now."""
    if create_missing(session, StoredSequence, values, nowait=nowait, fresh=True):
        return Stored(**{key: value for key, value in values.items() if key != "name"})
    return load(session, values["name"])  # someone else's, stored meanwhile


def _stored_row(sequence: Sequence) -> dict[str, Any]:
    return {
        "name": sequence.name,
        "impl": sequence.strategy.kind,
        "options": strategy_options(sequence.strategy),
        **sequence.definition.settings(),
    }


def _described(entry: Sequence | Template) -> dict[str, Any]:
    """What must match for a registration to be the same: the order messages list it in."""
    if isinstance(entry, Template):
        pattern = {"pattern": entry.pattern}
        settings: dict[str, int | None] = {"start": entry.start, "step": entry.step}
    else:
        pattern, settings = {}, entry.definition.settings()
    impl = {"impl": type(entry.strategy).__name__, **strategy_options(entry.strategy)}
    return {**pattern, **impl, **settings}


def _shown(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _stored_template(template: Template) -> dict[str, Any]:
    return {
        "name": template.name,
        "impl": template.strategy.kind,
        "options": strategy_options(template.strategy),
        "start": template.start,
        "step": template.step,
        "reset": None,
        "pattern": template.pattern,
        "parent": None if template.parent is None else template.parent.name,
    }


def _refuse_conflict(have: Entry, want: Entry, where: str) -> None:
    had, wanted = _described(have), _described(want)
    differ = [key for key in wanted if had.get(key) != wanted[key]]
    if differ:
        was = ", ".join(f"{key}={had.get(key)!r}" for key in differ)
        got = ", ".join(f"{key}={wanted[key]!r}" for key in differ)
        raise SequenceConfigError(f"{want.name!r} is already {where} with {was}; got {got}")


registry = Registry()


def _agree(session: SessionLike, entry: agreement.Entry) -> None:
    # The registry of the moment (tests swap it); Sequence and Template are the only entries.
    registry.agree(session, cast("Sequence | Template", entry))


agreement.checked_by(_agree)


def register_sequence(
    name: str,
    session: SessionLike,
    impl: object = None,
    *,
    start: int = 1,
    step: int = 1,
    reset: int | None = None,
) -> Sequence:
    """Create sequence *name* where missing and register it in this process; return it.

    Run it at setup. The default *impl* is the gapless `TableSequence`. Its rows are created
    in the caller's transaction on PostgreSQL and SQLite, and in a short transaction of
    their own on MariaDB (InnoDB gap locks make the in-transaction insert deadlock-prone):
    there they survive the caller's rollback and the caller's REPEATABLE READ snapshot
    does not see them (docs: "What the library does apart"). Registering again with the
    same parameters does nothing; with others it raises `SequenceConfigError`. *start* is
    the first value, *step* a non-zero increment, and *reset* the value at which the
    sequence starts again at *start*.
    """
    return registry.register(name, session, impl, start=start, step=step, reset=reset)


def get_sequence(name: str, session: SessionLike | None = None) -> Sequence:
    """Return the sequence registered as *name*, or with *session* one stored by another process.

    A stored one is as the database of *session* stores it (each database its own, as with
    a database per tenant); finding it registers nothing in this process. A registered one
    is only returned, and any `Sequence` only used, where the database stores it alike:
    otherwise `SequenceConfigError` names both definitions. An unknown name raises
    `UnknownSequence`.
    """
    return registry.get(name, session)


def register_template(
    name: str,
    pattern: str,
    session: SessionLike,
    *,
    start: int = 1,
    step: int = 1,
    impl: object = None,
) -> Template:
    """Store template *name* with *pattern* where missing, register it here and return it.

    Run it at setup. *pattern* holds one ``{counter}`` placeholder (a conversion and format
    spec allowed, ``{counter:03d}``), keywords (``{year}``) and at most one placeholder
    named after another registered template, its parent. Each distinct rendering of the
    non-counter part counts on its own, from *start* by *step*, with the guarantees of
    *impl* (default: the gapless `TableSequence`). An invalid pattern raises
    `TemplateError`; registering again differently raises `SequenceConfigError`.
    """
    return registry.register_template(name, pattern, session, start=start, step=step, impl=impl)


def get_template(name: str, session: SessionLike | None = None) -> Template:
    """Return the template registered as *name*; given *session*, also one stored elsewhere.

    A stored one is as the database of *session* stores it, and a registered one must agree
    with it, as with `get_sequence`. An unknown name raises `UnknownSequence`.
    """
    return registry.get_template(name, session)
