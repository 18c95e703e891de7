"""Carrying counters over from django-sequences and invenio-sequencegenerator tables.

Each import reads the peer's tables in the caller's transaction, checks everything, then
writes: a refusal (a counter that would move back, a conflicting definition) leaves
nothing written. Running it again changes nothing.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from .administration import check_value, next_after
from .binding import SessionLike, check_session
from .definition import Definition, check_integer, check_name, define
from .errors import SequenceConfigError
from .model import KEY_MAX
from .registry import get_sequence, get_template, register_sequence, register_template
from .sequence import Sequence
from .storage import load
from .strategies import counts_in_rows, hold_counter, reaching, restartable
from .template import Template

# invenio-sequencegenerator's counter placeholder (its COUNTER_REGEX, without the greed).
_INVENIO_COUNTER = re.compile(r"\{counter(?:![rsa])?(?::[^{}]*)?\}")


def import_django_sequences(
    session: SessionLike, *, table: str = "sequences_sequence", schema: str | None = None
) -> dict[str, int]:
    """Continue each django-sequences sequence where it left off; return those moved.

    Reads ``sequences_sequence(name, last)``: each name becomes a gapless sequence (made
    where missing, start 1) whose next value is ``last + 1``. Returns the sequences
    moved, each with its next value; running it again returns ``{}``. A sequence that
    would move back (it handed out more here already), or whose series does not hold
    ``last + 1``, raises `SequenceConfigError` before anything is written. In the
    caller's transaction (on MariaDB, missing sequences are created apart, after every
    check has passed).
    """
    check_session(session)
    peer = sa.table(table, sa.column("name"), sa.column("last"), schema=schema)
    rows = session.execute(sa.select(peer.c.name, peer.c["last"]).order_by(peer.c.name)).all()
    plan: dict[str, int] = {}
    for name, last in rows:
        wanted = check_integer(last, f"django-sequences' last value of {name!r}") + 1
        stored = load(session, check_name(name))
        if stored is not None and stored.pattern is not None:
            raise SequenceConfigError(
                f"{name!r} is a template here, a sequence in django-sequences"
            )
        if stored is None:
            plan[name] = check_value(define(name), wanted)
            continue
        sequence = get_sequence(name, session)
        if _moves(session, sequence.definition, sequence, wanted):
            plan[name] = wanted
    for name, value in plan.items():
        register_sequence(name, session).restart(session, value)
    return plan


def import_invenio(
    session: SessionLike,
    *,
    templates: str = "sequencegenerator_template",
    counters: str = "sequencegenerator_counter",
    schema: str | None = None,
) -> dict[str, dict[str, int]]:
    """Carry invenio-sequencegenerator's templates and counters over; return the counters moved.

    Each template definition (``name``, ``meta_template``, ``parent_name``, ``start``,
    ``step``) becomes a template of the same name and pattern (parents first), and each
    counter (``template_instance``, ``definition_name``, ``counter``, which holds the
    *next* value) continues where it left off. Returns, per template, each counter key
    moved with its next value; running it again returns ``{}``. A conflicting
    definition, or a counter that would move back, raises `SequenceConfigError` before
    anything is written. In the caller's transaction.
    """
    check_session(session)
    defined = sa.table(
        templates,
        *(sa.column(c) for c in ("name", "meta_template", "parent_name", "start", "step")),
        schema=schema,
    )
    counted = sa.table(
        counters,
        *(sa.column(c) for c in ("template_instance", "definition_name", "counter")),
        schema=schema,
    )
    definitions = {row.name: row for row in session.execute(sa.select(defined))}
    ordered = _parents_first(definitions)
    settings = {}
    for name in ordered:
        row = definitions[name]
        start = 0 if row.start is None else row.start  # invenio's default start is 0
        step = 1 if row.step is None else row.step
        settings[name] = define(name, start, step)
        _refuse_other_template(session, name, row.meta_template, settings[name])
    plan: dict[str, dict[str, int]] = {}
    query = sa.select(counted).order_by(counted.c.definition_name, counted.c.template_instance)
    for row in session.execute(query):
        if row.definition_name not in settings:
            raise SequenceConfigError(
                f"invenio counter {row.template_instance!r} has no template definition"
            )
        definition = settings[row.definition_name]
        key = _invenio_key(definitions[row.definition_name].meta_template, row.template_instance)
        counter = Definition(definition.name, definition.start, definition.step, None, key)
        wanted = check_value(counter, row.counter)
        stored = load(session, definition.name)
        if stored is None or _moves(session, counter, get_template(counter.name, session), wanted):
            plan.setdefault(counter.name, {})[key] = wanted
    made: dict[str, Template] = {}
    for name in ordered:
        row, definition = definitions[name], settings[name]
        made[name] = register_template(
            name, row.meta_template, session, start=definition.start, step=definition.step
        )
    for name, keys in plan.items():
        for key, value in keys.items():
            made[name].restart_key(session, key, value)
    return plan


def _moves(
    session: SessionLike, counter: Definition, entry: Sequence | Template, wanted: int
) -> bool:
    """Lock the counter as `next` does; tell whether it must move to *wanted*, refusing back."""
    strategy = entry.strategy
    restartable(strategy, "an import")  # refused before anything moves
    found, reached = hold_counter(session, counter)  # a row-backed counter waits here
    if not found or not counts_in_rows(strategy):
        # A native one has no lock to take.
        reached = reaching(strategy, "an import").reached(session, counter)
    current = next_after(counter, reached)
    if current is not None and (wanted - current) * counter.step < 0:
        where = f" counter {counter.key!r}" if counter.key else ""
        raise SequenceConfigError(
            f"{counter.name!r}{where} would move back from {current} to {wanted}: it handed "
            "out more here already; nothing was imported"
        )
    return current != wanted


def _parents_first(definitions: dict[str, Any]) -> list[str]:
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in ordered:
            return
        if name in visiting or name not in definitions:
            raise SequenceConfigError(f"invenio template {name!r}: its parents do not resolve")
        visiting.add(name)
        parent = definitions[name].parent_name
        if parent is not None:
            visit(parent)
        ordered.append(name)

    for name in sorted(definitions):
        visit(name)
    return ordered


def _refuse_other_template(
    session: SessionLike, name: str, pattern: str, definition: Definition
) -> None:
    stored = load(session, name)
    if stored is None:
        return
    had = (stored.pattern, stored.start, stored.step)
    wanted = (pattern, definition.start, definition.step)
    if had != wanted:
        raise SequenceConfigError(
            f"{name!r} is already stored with pattern={had[0]!r}, start={had[1]}, "
            f"step={had[2]}; invenio has pattern={pattern!r}, start={definition.start}, "
            f"step={definition.step}"
        )


def _invenio_key(pattern: str, instance: str) -> str:
    """Return mortar_seq's counter key for invenio's *instance* of *pattern*.

    invenio stores the rendering with its counter placeholder left in, braces unescaped.

    >>> _invenio_key("{year}: Playlist {counter:02d}", "2015: Playlist {counter:02d}")
    '2015: Playlist {counter:02d}'
    """
    found = list(_INVENIO_COUNTER.finditer(instance))
    expected = _INVENIO_COUNTER.search(pattern)
    if len(found) != 1 or expected is None or found[0].group() != expected.group():
        raise SequenceConfigError(
            f"invenio counter {instance!r} does not hold {pattern!r}'s counter placeholder once"
        )
    match = found[0]
    before, after = instance[: match.start()], instance[match.end() :]
    key = _escape(before) + match.group() + _escape(after)
    if len(key) > KEY_MAX:
        raise SequenceConfigError(f"invenio counter {instance!r} is longer than {KEY_MAX}")
    return key


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")
