"""Templates: formatted identifiers, each distinct rendering counting on its own."""

from __future__ import annotations

import collections.abc as abc
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from weakref import WeakKeyDictionary

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement

from .admin.restarts import (
    check_value,
    delete_counter_row,
    latest_counter_keys,
    refuse_children,
)
from .agreement import agree
from .db.binding import SESSIONS, SessionLike, check_session, engine_of
from .db.locking import waiting_at_most
from .db.side import side_engine
from .definition import Definition, check_count
from .errors import TemplateError, UnknownSequence
from .numbering.at_commit import insert_row, numbering_default, register_object
from .numbering.at_flush import refuse_from_select, row_keywords, scalar_defaults
from .numbering.pending import Series
from .patterns.parse_back import (
    counter_elsewhere,
    counters,
    one_way_for_every_counter,
    readings,
    reads_one_way,
)
from .patterns.pattern import Pattern, around_counter, identifier
from .sequence import no_wait
from .storage import creates_apart, existing_keys, load
from .strategies import SequenceStrategy, gapless, reaching, restartable
from .strategies.numbered_statements import identifier_in_sql
from .strategies.targets import target

_lock = threading.Lock()
# Counters known to exist, per engine: their first use creates them, later uses need not.
# The most recently used only, so that a process using millions of keys stays small; a
# forgotten one costs its next use a creation that finds it there (a statement or two).
_KNOWN_MAX = 4096
_known: WeakKeyDictionary[Engine, OrderedDict[tuple[str, str], None]] = WeakKeyDictionary()


@dataclass(frozen=True)
class Template:
    """A named pattern such as ``'{year}: Playlist {counter}'``; ``tpl.next(session, year=2015)``.

    Each distinct rendering of the non-counter part has a counter of its own, with the
    guarantees of the implementation under it (by default the gapless `TableSequence`:
    a rolled-back identifier is given back). Calls run in the caller's transaction and
    never commit or roll it back; save an identifier in the transaction that took it.
    """

    name: str
    parsed: Pattern
    start: int
    step: int
    strategy: SequenceStrategy
    parent: Template | None = None

    @property
    def pattern(self) -> str:
        """The pattern, as registered."""
        return self.parsed.text

    def parse(self, identifier: str, /) -> tuple[dict[str, str], int]:
        """Read *identifier* back: return its keywords (as rendered) and its counter.

        Pure Python, no database: it tells whether this template *could* issue the text
        (its pattern, counter series, check digits, and its parent's pattern for the
        parent's value), not whether it did. Raise `TemplateError` if it could not, or if
        the text reads more than one way (``'{a}{b}-{counter}'`` reads ``'12-1'`` with
        ``a=''`` or ``a='1'``): the error names two of them.
        """
        if not isinstance(identifier, str):
            raise TemplateError(f"an identifier is text, not {type(identifier).__name__}")
        found = readings(
            self.parsed, identifier, self._parent_pattern(), limit=2, counter=self._in_series
        )
        if not found:
            raise TemplateError(f"{identifier!r} is not an identifier of template {self.name!r}")
        if len(found) > 1:
            ways = " or ".join(repr(reading.keywords) for reading in found)
            raise TemplateError(
                f"{identifier!r} reads more than one way as {self.pattern!r}: {ways}"
            )
        return found[0].keywords, found[0].counter

    def next(self, session: SessionLike, /, *, nowait: bool = False, **keywords: object) -> str:
        """Take the next identifier for *keywords* in the caller's transaction and return it.

        Save it in the same transaction. With *nowait*, raise `SequenceLocked` instead of
        waiting for another transaction that holds the counter (its first use included).
        """
        return self.next_many(session, 1, nowait=nowait, **keywords)[0]

    def next_many(
        self, session: SessionLike, count: int, /, *, nowait: bool = False, **keywords: object
    ) -> list[str]:
        """Take *count* identifiers for *keywords* at once (one counter call) and return them.

        As `next`: in the caller's transaction; save them there.
        """
        if not isinstance(session, SESSIONS):
            check_session(session)
        agree(session, self)
        counter = self._counter(session, keywords)
        number = check_count(count, counter)
        key = counter.key
        if not nowait:  # the hot path: nothing to bound
            taken = self._take(session, counter, number)
        else:
            with waiting_at_most(session, 0, self.name):
                taken = self._take(session, counter, number, nowait=True)
        texts = [identifier(key, value) for value in taken]
        for value, text in zip(taken, texts, strict=True):
            refusal = self._other_readings(key, value, text)
            if refusal is not None:
                if gapless(self.strategy):  # give the values back, in case the caller commits
                    restartable(self.strategy, "a refusal").restart(session, counter, taken[0])
                raise refusal
        return texts

    def last(self, session: SessionLike, /, **keywords: object) -> str | None:
        """Return the last identifier issued for *keywords* and visible to *session*, or None."""
        check_session(session)
        agree(session, self)
        counter = self._counter(session, keywords)
        value = self.strategy.last(session, counter)
        return None if value is None else identifier(counter.key, value)

    def restart(
        self, session: SessionLike, value: int, /, *, nowait: bool = False, **keywords: object
    ) -> None:
        """Make *value* the next counter value for *keywords*, in the caller's transaction.

        As `Sequence.restart`. A parent's rendering is refused (`TemplateError` naming the
        child) while a child template counts under an identifier it issued.
        """
        check_session(session)
        agree(session, self)
        counter = self._counter(session, keywords)
        number = check_value(counter, value)
        strategy = restartable(self.strategy, "restart")
        with waiting_at_most(session, no_wait(nowait), self.name):
            self._create(session, counter, nowait=nowait)
            refuse_children(session, counter, self.strategy, "restart")
            strategy.restart(session, counter, number)
        _remember_counter(engine_of(session), self.name, counter.key)

    def restart_key(self, session: SessionLike, key: str, value: int, /) -> None:
        """Make *value* the next value of the counter with *key* (a rendering), made if missing.

        For imports, which know renderings rather than keywords: no parent or child is
        checked. In the caller's transaction.
        """
        agree(session, self)
        counter = self._definition(key)
        number = check_value(counter, value)
        strategy = restartable(self.strategy, "an import")
        self._create(session, counter, nowait=False)
        strategy.restart(session, counter, number)
        _remember_counter(engine_of(session), self.name, key)

    def delete_counter(self, session: SessionLike, /, **keywords: object) -> bool:
        """Delete the counter of *keywords*, in the caller's transaction; tell whether it existed.

        Its identifiers may then be issued again, from the start. Refused (`TemplateError`
        naming the child) while a child template counts under an identifier it issued. A
        native counter's SEQUENCE is dropped with it, at once where DDL is not
        transactional (MariaDB).
        """
        check_session(session)
        agree(session, self)
        key = self.parsed.key(keywords)
        counter = self._definition(key)
        refuse_children(session, counter, self.strategy, "delete")
        existed = delete_counter_row(session, self.name, key)
        if existed:
            self.strategy.delete(session, counter)
        _forget_counter(engine_of(session), self.name, key)
        return existed

    def counters(self, session: SessionLike, /) -> dict[str, str | None]:
        """Return each counter's key (a rendering) and its last identifier, None before the first.

        Each value is what `last` says for the keywords of that rendering.
        """
        check_session(session)
        agree(session, self)
        found: dict[str, str | None] = {}
        for key in sorted(latest_counter_keys(session, self.name)):
            value = self.strategy.last(session, self._definition(key))
            found[key] = None if value is None else identifier(key, value)
        return found

    def values(
        self, session: SessionLike, /, *, nowait: bool = False, **keywords: object
    ) -> abc.Iterator[str]:
        """Iterate over next identifiers for *keywords*, without end."""
        while True:
            yield self.next(session, nowait=nowait, **keywords)

    def insert(
        self,
        session: SessionLike,
        table: object,
        values: abc.Mapping[str, Any],
        /,
        *,
        column: str,
        **keywords: object,
    ) -> str:
        """Take the next identifier and insert a row of *table* with it; return the identifier.

        As `Sequence.insert`. The pattern's keywords default to the row's own values of the
        same names (``'{company}/{year}/{counter:05d}'`` reads ``company`` and ``year``),
        the columns' scalar defaults included, as `default` reads them; explicit *keywords*
        win. Two statements: the counter's, then the INSERT.

        .. versionadded:: 0.1
        """
        if not isinstance(session, SESSIONS):
            check_session(session, "insert", table)
        into = target(table, column)
        row = into.row(values)
        taken = {name: value for name, value in values.items() if name != "nowait"}
        text = self.next(session, **{**scalar_defaults(into.table, row), **taken, **keywords})
        into.insert(session, [row], [text])
        return text

    def default(self, **keywords: object) -> abc.Callable[[Any], str]:
        """Return a column default that gives each new row its identifier at flush.

        ``mapped_column(String(40), default=tpl.default())``; keywords default to the row's
        own values, as in `insert`.

        .. versionadded:: 0.1
        """

        def default(context: Any) -> str:
            refuse_from_select(context)
            return self.next(context.connection, **{**row_keywords(context), **keywords})

        return default

    def at_commit(
        self, session: SessionLike, obj: object, attribute: str, /, **keywords: object
    ) -> None:
        """Give *obj*'s *attribute* its identifier just before *session* commits.

        As `Sequence.at_commit`. The keywords default to the object's own attributes of the
        same names (and its columns' scalar defaults), read now; explicit *keywords* win.
        Each counter key (rendering) is a series of its own, numbered in registration
        order. An identifier the template must not issue (another counter could issue the
        same text) makes the commit fail with `TemplateError`. A parent value is checked now.

        .. versionadded:: 0.1
        """
        if not isinstance(session, SESSIONS):
            check_session(session, "at_commit", obj)
        agree(session, self)
        into = target(type(obj), attribute)
        mapped = sa.inspect(type(obj)).attrs
        own = {name: getattr(obj, name) for name in self.parsed.keywords if name in mapped}
        own = {name: value for name, value in own.items() if value is not None}
        found = {**scalar_defaults(into.table, own), **own, **keywords}
        register_object(session, _AtCommit(self, self._counter(session, found)), obj, attribute)

    def insert_at_commit(
        self,
        session: SessionLike,
        table: object,
        values: abc.Mapping[str, Any],
        /,
        *,
        column: str,
        **keywords: object,
    ) -> tuple[Any, ...]:
        """Insert a row of *table* now, with *column* NULL, given its identifier just before
        COMMIT; return the row's primary key.

        As `Sequence.insert_at_commit`; keywords as in `insert` (the row's own values and
        its columns' scalar defaults; explicit *keywords* win), and as in `at_commit`.

        .. versionadded:: 0.1
        """
        if not isinstance(session, SESSIONS):
            check_session(session, "insert_at_commit", table)
        agree(session, self)
        into = target(table, column)
        row = into.row(values)
        found = {**scalar_defaults(into.table, row), **values, **keywords}
        counter = _AtCommit(self, self._counter(session, found))
        return insert_row(session, counter, table, values, column)

    def default_at_commit(self, **keywords: object) -> abc.Callable[[Any], None]:
        """Return a column default that leaves the column NULL at flush and gives the row
        its identifier just before COMMIT.

        ``mapped_column(String(40), default=tpl.default_at_commit())``; keywords as in
        `default`, read at flush. See `Sequence.default_at_commit`.

        .. versionadded:: 0.1
        """
        return numbering_default(lambda context: self.counter_at_commit(context, keywords))

    def counter_at_commit(self, context: Any, keywords: abc.Mapping[str, object]) -> Series:
        """The counter that numbers at commit the row *context* (an INSERT's execution) is
        writing: its own values, then *keywords*; a parent value is checked now."""
        connection = context.connection
        agree(connection, self)
        return _AtCommit(self, self._counter(connection, {**row_keywords(context), **keywords}))

    def issued(self, session: SessionLike, text: str) -> bool:
        """Tell whether this template has issued identifier *text* (to anyone).

        A primary-key lookup of the few counters the text can belong to, however many
        counters the template has.
        """
        agree(session, self)
        candidates = self._candidates(text)
        if not candidates:
            return False
        if self._issued(session, candidates):
            return True
        if not creates_apart(session):
            return False
        # Counters created on a connection of their own may be newer than the caller's
        # REPEATABLE READ snapshot: look again, apart.
        with side_engine(engine_of(session)).connect() as connection:
            return self._issued(connection, candidates)

    def _issued(self, session: SessionLike, candidates: set[tuple[str, int]]) -> bool:
        for key in existing_keys(session, self.name, sorted({key for key, _ in candidates})):
            found = reaching(self.strategy, "a parent template")
            reached = found.reached(session, self._definition(key))
            if reached is None:
                continue
            if any(self._between_start_and(reached, n) for each, n in candidates if each == key):
                return True
        return False

    def _other_readings(self, key: str, value: int, text: str) -> TemplateError | None:
        """The refusal of *text* unless it reads back only as counter *key* at *value*:
        another counter could issue it too (``'{month}{counter}'`` writes ``'111'`` for
        month 1 at 11 and month 11 at 1), so it is never handed out."""
        if self._reads_only_as(key, value, text):
            return None
        found = readings(
            self.parsed, text, self._parent_pattern(), limit=8, counter=self._in_series
        )
        ours = next((reading.keywords for reading in found if reading.key == key), {})
        others = [reading.keywords for reading in found if reading.key != key]
        differs = sorted({name for each in others for name in each if each[name] != ours.get(name)})
        why = f"it also reads as {others[0]!r}" if others else "it does not read back as one"
        kept = (
            "the counter was given back"
            if gapless(self.strategy)
            else "its value is lost, as a rolled-back one is"
        )
        return TemplateError(
            f"{self.pattern!r} will not issue {text!r}: {why}, so another counter could issue "
            f"it too{_naming(differs)}; nothing was issued and {kept}. A separator between "
            "the counter and the keywords, or keyword values that cannot hold one, avoids this"
        )

    def _reads_only_as(self, key: str, value: int, text: str) -> bool:
        """Whether *text* reads back only as counter *key* at *value*; cheap checks first
        (the same answer, sooner), the full reading of the text last."""
        facts = self._key_facts.get(key)
        if facts is None:
            negative = self.start < 0 or self.step < 0
            settled = one_way_for_every_counter(self.parsed, key, negative=negative)
            before, after = around_counter(key)
            if len(self._key_facts) >= _KNOWN_MAX:
                self._key_facts.clear()
            facts = self._key_facts[key] = (settled, len(before), len(after))
        settled, before_length, after_length = facts
        if settled or reads_one_way(self.parsed, text):
            return True
        span = (before_length, len(text) - after_length)
        elsewhere = counter_elsewhere(self.parsed, text, span, self._in_series)
        if elsewhere is False:
            return True
        return self._candidates(text) == {(key, value)}

    @cached_property
    def _key_facts(self) -> dict[str, tuple[bool, int, int]]:
        """Per counter key, worked out once: whether all its identifiers read one way, and
        the length of the text before and after its counter."""
        return {}

    def _candidates(self, text: str) -> set[tuple[str, int]]:
        """The counter keys that could have issued *text*, each with the value it needs."""
        found = counters(self.parsed, text, self._parent_pattern())
        return {(key, number) for key, number in found if self._in_series(number)}

    def _could_issue(self, text: str) -> bool:
        return bool(self._candidates(text))

    def _parent_pattern(self) -> abc.Callable[[str], bool] | None:
        return None if self.parent is None else self.parent._could_issue

    def _in_series(self, number: int) -> bool:
        return (number - self.start) % self.step == 0 and (number - self.start) * self.step >= 0

    def _between_start_and(self, reached: int, number: int) -> bool:
        # Measured in steps from the start, so that negative steps read the same way.
        return 0 <= (number - self.start) * self.step <= (reached - self.start) * self.step

    def _definition(self, key: str) -> Definition:
        return Definition(self.name, self.start, self.step, None, key)

    def _counter(self, session: SessionLike, keywords: dict[str, object]) -> Definition:
        counter = self._definition(self.parsed.key(keywords))
        parent = self.parent
        if parent is not None:
            value = keywords[parent.name]
            if not isinstance(value, str) or not parent.issued(session, value):
                raise TemplateError(
                    f"{value!r} is not an identifier issued by template {parent.name!r}"
                )
        return counter

    def _take(
        self, session: SessionLike, counter: Definition, count: int, *, nowait: bool = False
    ) -> abc.Sequence[int]:
        self._ready(session, counter, nowait=nowait)
        try:
            return self.strategy.next_many(session, counter, count)
        except UnknownSequence:
            # Its row went away: with a rolled-back transaction that created it (create it
            # again), or with the template itself (deleted, perhaps by another process).
            self._create(session, counter, nowait=nowait)
            return self.strategy.next_many(session, counter, count)

    def _ready(self, session: SessionLike, counter: Definition, *, nowait: bool) -> None:
        """Create the counter unless it is known to exist."""
        engine = engine_of(session)
        entry = (self.name, counter.key)
        with _lock:
            known = _known.setdefault(engine, OrderedDict())
            found = entry in known
            if found:
                known.move_to_end(entry)
        if not found:
            self._create(session, counter, nowait=nowait)
            _remember_counter(engine, self.name, counter.key)

    def _create(self, session: SessionLike, counter: Definition, *, nowait: bool) -> None:
        # Never a counter for a template no longer stored: a held object would issue its
        # identifiers again from a new counter, with no definition left to say so.
        row = load(session, self.name)
        if row is None or row.pattern != self.pattern:
            raise UnknownSequence(self.name, ": the template was deleted")
        self.strategy.create(session, counter, nowait=nowait)


@dataclass(frozen=True)
class _AtCommit:
    """One counter of a template, numbered at commit as a series of its own."""

    template: Template
    definition: Definition

    @property
    def strategy(self) -> SequenceStrategy:
        return self.template.strategy

    def prepare(self, session: SessionLike, *, again: bool) -> None:
        # Created at commit rather than at registration, where it would lock a new key's
        # counter for the whole transaction.
        if again:
            self.template._create(session, self.definition, nowait=False)
            _remember_counter(engine_of(session), self.template.name, self.definition.key)
        else:
            self.template._ready(session, self.definition, nowait=False)

    def texts(self, numbers: abc.Sequence[int]) -> list[str]:
        key = self.definition.key
        texts = [identifier(key, number) for number in numbers]
        for number, text in zip(numbers, texts, strict=True):
            refusal = self.template._other_readings(key, number, text)
            if refusal is not None:
                raise refusal
        return texts

    def in_sql(self) -> abc.Callable[[ColumnElement[Any]], ColumnElement[Any]] | None:
        return identifier_in_sql(self.definition.key)


def _naming(names: list[str]) -> str:
    return f" (keywords {', '.join(map(repr, names))})" if names else ""


def forget_counters(engine: Engine, name: str) -> None:
    """Forget which counters of template *name* exist (it was deleted)."""
    with _lock:
        known = _known.get(engine, OrderedDict())
        for entry in [entry for entry in known if entry[0] == name]:
            del known[entry]


def _forget_counter(engine: Engine, name: str, key: str) -> None:
    """Forget that counter *key* of template *name* exists (it was deleted)."""
    with _lock:
        _known.get(engine, OrderedDict()).pop((name, key), None)


def _remember_counter(engine: Engine, name: str, key: str) -> None:
    """Remember that counter *key* of template *name* exists, forgetting the least used."""
    with _lock:
        known = _known.setdefault(engine, OrderedDict())
        known[(name, key)] = None
        if len(known) > _KNOWN_MAX:
            known.popitem(last=False)
