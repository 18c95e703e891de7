"""Carrying counters over from django-sequences and invenio-sequencegenerator tables.

Each import reads the peer's tables in the caller's transaction, checks everything, then
writes: a refusal (a counter that would move back, a value its series here never hands
out, a conflicting definition) leaves nothing written, and lists every refused entry at
once. Running it again changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from . import registry as registry_module
from .admin.restarts import check_value, next_after
from .db.binding import SessionLike, check_session, connected_dialect
from .definition import Definition, check_integer, check_name, define
from .errors import SequenceConfigError, UnknownSequence
from .model import KEY_MAX
from .registry import get_sequence, get_template, register_sequence, register_template
from .sequence import Sequence
from .storage import load
from .strategies import (
    SequenceStrategy,
    TableSequence,
    counts_in_rows,
    hold_counter,
    reaching,
    read_counter,
    restartable,
)
from .template import Template

# invenio-sequencegenerator's counter placeholder (its COUNTER_REGEX, without the greed).
_INVENIO_COUNTER = re.compile(r"\{counter(?:![rsa])?(?::[^{}]*)?\}")


def import_django_sequences(
    session: SessionLike,
    *,
    table: str = "sequences_sequence",
    schema: str | None = None,
    exclude: Iterable[str] = (),
) -> dict[str, int]:
    """Continue each django-sequences sequence where it left off; return those moved.

    Reads ``sequences_sequence(name, last)``: each name continues after ``last``, with the
    settings stored here (register it first with the ``initial_value`` and
    ``reset_value`` django-sequences used: it stores neither), else those registered in
    this process, else as a new gapless sequence from 1. Returns the sequences moved, each
    with its next value; running it again returns ``{}``. A sequence that would move back
    (it handed out more here already), whose ``last`` its series here never hands out
    (before its start, at or beyond its reset, off its step), or that resets and was used
    here since, is refused: `SequenceConfigError` lists every one, before anything is
    written. The names in *exclude* are left out, neither made nor moved. In the caller's
    transaction (on MariaDB, missing sequences are created apart, after every check).
    """
    check_session(session)
    left_out = _names(exclude)
    peer = sa.table(table, sa.column("name"), sa.column("last"), schema=schema)
    rows = session.execute(sa.select(peer.c.name, peer.c["last"]).order_by(peer.c.name)).all()
    moves: dict[str, tuple[Sequence, int]] = {}
    missing: dict[str, tuple[Sequence, int]] = {}
    refused: list[str] = []
    for name, last in rows:
        if name in left_out:
            left_out[name] = True
            continue
        try:
            sequence, stored = _django_target(session, check_name(name))
            wanted = _after_last(sequence.definition, last)
            if not stored:
                missing[name] = sequence, wanted
            elif _moves(session, sequence.definition, sequence.strategy, wanted, repr(name)):
                moves[name] = sequence, wanted
        except SequenceConfigError as exc:
            refused.append(str(exc))
    _refuse(refused, "django-sequences sequence", left_out)
    # Moves in the caller's transaction first; creations last, as on MariaDB they are
    # committed apart at once.
    for sequence, value in moves.values():
        sequence.restart(session, value)
    for sequence, value in missing.values():
        definition = sequence.definition
        made = register_sequence(
            definition.name,
            session,
            sequence.strategy,
            start=definition.start,
            step=definition.step,
            reset=definition.reset,
        )
        made.restart(session, value)
    return {name: value for name, (_, value) in sorted({**moves, **missing}.items())}


def import_invenio(
    session: SessionLike,
    *,
    templates: str = "sequencegenerator_template",
    counters: str = "sequencegenerator_counter",
    schema: str | None = None,
    exclude: Iterable[str] = (),
) -> dict[str, dict[str, int]]:
    """Carry invenio-sequencegenerator's templates and counters over; return the counters moved.

    Each template definition (``name``, ``meta_template``, ``parent_name``, ``start``,
    ``step``) becomes a template of the same name and pattern (parents first), and each
    counter (``template_instance``, ``definition_name``, ``counter``, which holds the
    *next* value) continues where it left off. Returns, per template, each counter key
    moved with its next value; running it again returns ``{}``. A conflicting definition
    raises `SequenceConfigError`; so do counters that would move back or whose value the
    template's series never hands out, all listed in one error. Nothing is written then.
    The counters whose ``template_instance`` is in *exclude* are left out, neither made
    nor moved. In the caller's transaction.
    """
    check_session(session)
    planned = invenio_plan(session, templates, counters, schema, exclude)
    definitions, ordered, settings, existing, plan = planned
    made: dict[str, Template] = {}
    for name in ordered:
        row, definition, (found, stored) = definitions[name], settings[name], existing[name]
        if found is not None and stored:
            made[name] = found
            continue
        made[name] = register_template(
            name,
            row.meta_template,
            session,
            start=definition.start,
            step=definition.step,
            impl=None if found is None else found.strategy,
        )
    for name, keys in plan.items():
        for key, value in keys.items():
            made[name].restart_key(session, key, value)
    return plan


InvenioPlan = tuple[
    dict[str, Any],  # the definitions, by name
    list[str],  # their names, parents first
    dict[str, Definition],  # each one's settings
    dict[str, tuple[Template | None, bool]],  # each one's template here, and whether stored
    dict[str, dict[str, int]],  # per template, each counter key to move and its next value
]


def invenio_plan(
    session: SessionLike,
    templates: str,
    counters: str,
    schema: str | None,
    exclude: Iterable[str],
    *,
    lock: bool = True,
) -> InvenioPlan:
    """Read and check what `import_invenio` would carry over, refusing as it does; with
    *lock*, holding the counters to move as `next` does, else only reading them."""
    left_out = _names(exclude)
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
    settings: dict[str, Definition] = {}
    existing: dict[str, tuple[Template | None, bool]] = {}
    for name in ordered:
        row = definitions[name]
        start = 0 if row.start is None else row.start  # invenio's default start is 0
        step = 1 if row.step is None else row.step
        settings[name] = define(name, start, step)
        existing[name] = _existing_template(session, name, row.meta_template, settings[name])
    plan: dict[str, dict[str, int]] = {}
    refused: list[str] = []
    query = sa.select(counted).order_by(counted.c.definition_name, counted.c.template_instance)
    for row in session.execute(query):
        if row.template_instance in left_out:
            left_out[row.template_instance] = True
            continue
        try:
            key, wanted = _invenio_counter(session, row, definitions, settings, existing, lock=lock)
        except SequenceConfigError as exc:
            refused.append(str(exc))
            continue
        if wanted is not None:
            plan.setdefault(row.definition_name, {})[key] = wanted
    _refuse(refused, "invenio counter", left_out)
    return definitions, ordered, settings, existing, plan


def _names(exclude: Iterable[str]) -> dict[str, bool]:
    """The names to leave out, each mapped to whether the peer's table holds it."""
    if isinstance(exclude, str):
        raise TypeError(f"exclude must be a collection of names, not a str: {exclude!r}")
    names = list(exclude)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"exclude must hold names (str), not {name!r}")
    return dict.fromkeys(names, False)


def _refuse(refused: list[str], kind: str, left_out: dict[str, bool]) -> None:
    unknown = [name for name, found in left_out.items() if not found]
    if unknown:
        # A misspelt exclusion would otherwise import what was meant to be left out.
        named = ", ".join(repr(name) for name in unknown)
        raise SequenceConfigError(f"exclude names no {kind}: {named}; nothing was imported")
    if refused:
        count, them = (f"{len(refused)} {kind}s", "them") if refused[1:] else (f"1 {kind}", "it")
        raise SequenceConfigError(
            f"{count} refused (exclude {them} to import the others), nothing was imported: "
            + "; ".join(refused)
        )


def _django_target(session: SessionLike, name: str) -> tuple[Sequence, bool]:
    """The sequence *name* continues in, and whether this database stores it already."""
    stored = load(session, name)
    if stored is not None and stored.pattern is not None:
        raise SequenceConfigError(f"{name!r} is a template here, a sequence in django-sequences")
    if stored is not None:
        # As this database stores it: the process may have registered it for another one.
        return registry_module.registry.stored(session, name), True
    try:
        sequence = get_sequence(name)  # registered in this process, for another database
    except UnknownSequence:
        sequence = Sequence(define(name), TableSequence())
    sequence.strategy.check(connected_dialect(session), sequence.definition)
    return sequence, False


def _after_last(definition: Definition, last: object) -> int:
    """The value to hand out after django-sequences' *last*, in *definition*'s series."""
    name, start, step = definition.name, definition.start, definition.step
    number = check_integer(last, f"django-sequences' last value of {name!r}")
    if step < 0:
        raise SequenceConfigError(f"{name!r} counts down here, django-sequences counts up")
    if number == start - step:
        return start  # the value before the first: the series starts next
    try:
        check_value(definition, number)
    except SequenceConfigError:
        settings = definition.settings()
        shown = ", ".join(f"{key}={value}" for key, value in settings.items() if value is not None)
        raise SequenceConfigError(
            f"{name!r}: django-sequences' last value {number} is not a value of its series "
            f"here ({shown}); register it first with the initial_value and reset_value "
            "django-sequences used"
        ) from None
    following = next_after(definition, number)
    if following is None:
        raise SequenceConfigError(f"{name!r} has no value after {number} within 64 bits")
    return following


def _invenio_counter(
    session: SessionLike,
    row: Any,
    definitions: dict[str, Any],
    settings: dict[str, Definition],
    existing: dict[str, tuple[Template | None, bool]],
    *,
    lock: bool = True,
) -> tuple[str, int | None]:
    """Check one invenio counter; return its key and its next value (None: no move)."""
    if row.definition_name not in settings:
        raise SequenceConfigError(
            f"invenio counter {row.template_instance!r} has no template definition"
        )
    definition = settings[row.definition_name]
    key = _invenio_key(definitions[row.definition_name].meta_template, row.template_instance)
    counter = Definition(definition.name, definition.start, definition.step, None, key)
    label = f"{definition.name!r} counter {row.template_instance!r}"
    try:
        wanted = check_value(counter, row.counter)
    except SequenceConfigError as exc:
        raise SequenceConfigError(f"{label}: {exc}") from None
    template, stored = existing[row.definition_name]
    if template is None or not stored:
        return key, wanted
    moves = _moves(session, counter, template.strategy, wanted, label, lock=lock)
    return key, wanted if moves else None


def _moves(
    session: SessionLike,
    counter: Definition,
    strategy: SequenceStrategy,
    wanted: int,
    label: str,
    *,
    lock: bool = True,
) -> bool:
    """Tell whether the counter must move to *wanted*, refusing back; with *lock*, holding it
    as `next` does (an import), else reading it only (a dry run, which changes nothing)."""
    restartable(strategy, "an import")  # refused before anything moves
    # A row-backed counter waits here for the transactions that hold it.
    found, reached = hold_counter(session, counter) if lock else read_counter(session, counter)
    if not found or not counts_in_rows(strategy):
        # A native one has no lock to take.
        reached = reaching(strategy, "an import").reached(session, counter)
    current = next_after(counter, reached)
    if current == wanted:
        return False
    if counter.reset is not None and reached is not None:
        raise SequenceConfigError(
            f"{label} resets and has handed out values here: whether {wanted} lies ahead of "
            f"its next value {current} in its cycle cannot be told"
        )
    if current is not None and (wanted - current) * counter.step < 0:
        raise SequenceConfigError(
            f"{label} would move back from {current} to {wanted}: it handed out more here already"
        )
    return True


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


def _existing_template(
    session: SessionLike, name: str, pattern: str, definition: Definition
) -> tuple[Template | None, bool]:
    """The template *name* as stored here, else as registered in this process (for another
    database), else None; and whether it is stored. Refused where its pattern, start or
    step differ from invenio's."""
    stored = load(session, name) is not None
    try:
        found = get_template(name, session) if stored else get_template(name)
    except UnknownSequence:
        if stored:
            raise SequenceConfigError(
                f"{name!r} is a sequence here, a template in invenio"
            ) from None
        return None, False
    had = (found.pattern, found.start, found.step)
    if had != (pattern, definition.start, definition.step):
        where = "stored" if stored else "registered"
        raise SequenceConfigError(
            f"{name!r} is already {where} with pattern={had[0]!r}, start={had[1]}, "
            f"step={had[2]}; invenio has pattern={pattern!r}, start={definition.start}, "
            f"step={definition.step}"
        )
    return found, stored


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
