"""What ``restart``, ``delete`` and ``import`` would do, told without doing it (``--dry-run``).

Read only: each plan reads where things stand, in a transaction that writes nothing, and
raises what the verb itself would raise, with the same message. Not the verb run and rolled
back: on MariaDB a native SEQUENCE's DDL commits at once, and new rows are made on a
connection of the library's own, which no rollback undoes. The verbs' checks are spelled
out again here, where the library keeps them inside the writes (tests/test_cli_dry_run.py
holds each plan to the verb's outcome).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..admin.restarts import check_value, refuse_children
from ..db.dialects import caches_per_connection
from ..definition import NAME_MAX, Definition, check_name
from ..errors import SequenceConfigError, TemplateError, UnknownSequence
from ..importing import (
    _after_last,
    _django_target,
    _moves,
    _names,
    _refuse,
    invenio_plan,
)
from ..patterns.pattern import identifier, parse
from ..registry import get_sequence
from ..sequence import Sequence
from ..storage import children, counter_keys, existing_keys, load
from ..strategies import (
    NativeSequence,
    PooledSequence,
    SequenceStrategy,
    TableSequence,
    counts_in_rows,
    read_counter,
    refuse_behind,
    restartable,
    stored_strategy,
    strategy_for,
)
from ..template import Template

NOTHING_CHANGED = "dry run: nothing was changed"


def restart_plan(
    connection: Connection,
    name: str,
    value: int,
    template: Template | None,
    keywords: dict[str, object],
) -> list[str]:
    """What ``restart NAME VALUE [KEY=VALUE ...]`` would set, and from what."""
    if template is None:
        # Sequence.restart: the value, the verb, then the implementation's own refusals.
        sequence = get_sequence(name, connection)
        definition, strategy = sequence.definition, sequence.strategy
        number = check_value(definition, value)
        restartable(strategy, "restart")
        exists, reached = _standing(connection, strategy, definition)
        _refuse_restart(connection, strategy, definition, number, exists, reached)
        now = "it has handed out nothing" if reached is None else f"its last value is {reached}"
        what = f"sequence {name!r} ({strategy.kind})"
    else:
        # Template.restart: keywords and parent, value, verb; the counter is made where
        # missing, then the children and the implementation refuse.
        strategy = template.strategy
        definition = template._counter(connection, keywords)
        number = check_value(definition, value)
        restartable(strategy, "restart")
        exists = bool(existing_keys(connection, template.name, [definition.key]))
        reached = _standing(connection, strategy, definition)[1] if exists else None
        if exists:
            refuse_children(connection, definition, strategy, "restart")
        _refuse_restart(connection, strategy, definition, number, True, reached)
        if not exists:
            now = "a new counter, made first"
        elif reached is None:
            now = "it has issued nothing"
        else:
            now = f"its last identifier is {identifier(definition.key, reached)!r}"
        what = f"counter {definition.key!r} of template {name!r} ({strategy.kind})"
    return [f"would make {number} the next value of {what}; {now}", NOTHING_CHANGED]


def delete_plan(connection: Connection, name: str) -> list[str]:
    """What ``delete NAME`` would remove: the definition, its counters, SEQUENCE objects."""
    row = load(connection, check_name(name))
    if row is None:
        raise UnknownSequence(name)
    if row.pattern is not None:
        using = children(connection, name)
        if using:  # as Registry.delete refuses
            named = ", ".join(repr(child) for child in using)
            raise TemplateError(
                f"template {name!r} is the parent of {named}: delete the children first"
            )
    strategy = stored_strategy(row.impl, row.options)
    keys = sorted(counter_keys(connection, name))
    # The SEQUENCE objects it would drop (NativeSequence: one per counter): those there.
    sequence = getattr(strategy, "sequence", None)
    dropped: dict[str, str] = {}
    if callable(sequence):
        inspector = sa.inspect(connection)
        for key in sorted({"", *keys}) if row.pattern is not None else [""]:
            found: sa.Sequence = sequence(Definition(name, row.start, row.step, row.reset, key))
            if inspector.has_sequence(found.name, schema=found.schema):
                dropped[key] = found.name

    def last(definition: Definition) -> int | None:
        if callable(sequence) and definition.key not in dropped:
            return None  # no SEQUENCE to read: delete drops it "if exists"
        return _standing(connection, strategy, definition)[1]

    if row.pattern is None:
        definition = Definition(name, row.start, row.step, row.reset)
        settings = _settings(definition.settings())
        reached = last(definition)
        value = "nothing handed out" if reached is None else f"last value {reached}"
        lines = [f"would delete sequence {name!r} ({strategy.kind}: {settings}), {value}"]
        if keys:
            lines.append(f"would delete its counter row{'s' if len(keys) > 1 else ''}")
    else:
        settings = _settings({"pattern": repr(row.pattern), "start": row.start, "step": row.step})
        lines = [f"would delete template {name!r} ({strategy.kind}: {settings})"]
        lines.append(f"would delete its {len(keys)} counter{'' if len(keys) == 1 else 's'}")
        for key in keys:
            reached = last(Definition(name, row.start, row.step, None, key))
            value = "nothing issued" if reached is None else repr(identifier(key, reached))
            lines.append(f"\t{key!r}: {value}")
    lines += [f"would drop SEQUENCE {found}" for found in dropped.values()]
    return [*lines, NOTHING_CHANGED]


def import_plan(
    connection: Connection, source: str, *, schema: str | None, exclude: list[str]
) -> list[str]:
    """What ``import SOURCE`` would carry over: a line per counter, as the import prints it,
    after whether it is created or moved."""
    if source == "django-sequences":
        return _django_plan(connection, schema, exclude)
    return _invenio_plan(connection, schema, exclude)


def _django_plan(connection: Connection, schema: str | None, exclude: list[str]) -> list[str]:
    # import_django_sequences, read only.
    left_out = _names(exclude)
    peer = sa.table("sequences_sequence", sa.column("name"), sa.column("last"), schema=schema)
    rows = connection.execute(sa.select(peer.c.name, peer.c["last"]).order_by(peer.c.name))
    moves: dict[str, tuple[str, Sequence, int]] = {}
    refused: list[str] = []
    for name, last in rows.all():
        if name in left_out:
            left_out[name] = True
            continue
        try:
            sequence, stored = _django_target(connection, check_name(name))
            definition = sequence.definition
            wanted = _after_last(definition, last)
            if not stored:
                moves[name] = "create", sequence, wanted
            elif _moves(connection, definition, sequence.strategy, wanted, repr(name), lock=False):
                moves[name] = "move", sequence, wanted
        except SequenceConfigError as exc:
            refused.append(str(exc))
    _refuse(refused, "django-sequences sequence", left_out)
    for action, sequence, wanted in moves.values():
        # Sequence.restart's refusals; a new sequence's counter is made first.
        restartable(sequence.strategy, "restart")
        exists, reached = _standing(connection, sequence.strategy, sequence.definition)
        exists = exists or action == "create"
        _refuse_restart(connection, sequence.strategy, sequence.definition, wanted, exists, reached)
    lines = [f"{action}\t{name}\t{wanted}" for name, (action, _, wanted) in sorted(moves.items())]
    created = sum(action == "create" for action, _, _ in moves.values())
    summary = f"{_count(len(moves), 'sequence')} would be carried over ({created} created)"
    return [*lines, f"dry run: {summary}; nothing was changed"]


def _invenio_plan(connection: Connection, schema: str | None, exclude: list[str]) -> list[str]:
    # import_invenio, read only.
    planned = invenio_plan(
        connection,
        "sequencegenerator_template",
        "sequencegenerator_counter",
        schema,
        exclude,
        lock=False,
    )
    definitions, ordered, settings, existing, plan = planned
    lines: list[str] = []
    strategies: dict[str, SequenceStrategy] = {}  # the templates there will be, so far

    def is_template(field: str) -> bool:
        return field in strategies or _stored(connection, field)

    for name in ordered:  # register_template's checks, parents first
        row, definition, (found, stored) = definitions[name], settings[name], existing[name]
        if found is not None and stored:
            strategies[name] = found.strategy
            continue
        strategy = strategy_for(None if found is None else found.strategy)
        strategy.check(connection.dialect, definition)
        parse(row.meta_template, name, is_template)
        strategies[name] = strategy
        lines.append(f"template\t{name}\t{row.meta_template}")
    created = 0
    for name, keys in plan.items():
        strategy = strategies[name]
        restartable(strategy, "an import")
        known = set(existing_keys(connection, name, list(keys))) if existing[name][1] else set()
        for key, wanted in keys.items():
            counter = Definition(name, settings[name].start, settings[name].step, None, key)
            reached = _standing(connection, strategy, counter)[1] if key in known else None
            _refuse_restart(connection, strategy, counter, wanted, True, reached)
            action = "move" if key in known else "create"
            created += action == "create"
            lines.append(f"{action}\t{name}\t{key}\t{wanted}")
    templates = len([line for line in lines if line.startswith("template\t")])
    moved = sum(map(len, plan.values()))
    summary = (
        f"{_count(templates, 'template')} would be created, {_count(moved, 'counter')} "
        f"carried over ({created} created)"
    )
    return [*lines, f"dry run: {summary}; nothing was changed"]


def _refuse_restart(
    connection: Connection,
    strategy: SequenceStrategy,
    definition: Definition,
    value: int,
    exists: bool,
    reached: int | None,
) -> None:
    """Raise what the built-in implementations' ``restart`` would raise, checked by reading.

    By class: the protocol has no read-only twin of ``restart``. Another implementation's
    own refusals are only met by the real command.
    """
    if isinstance(strategy, PooledSequence):
        if definition.reset is not None:
            raise SequenceConfigError(
                f"{definition.name!r} is pooled and resets: processes may still hand out "
                "reserved values anywhere in its cycle, so it cannot be restarted"
            )
        if not exists:
            raise UnknownSequence(definition.name, " in this database")
        why = "processes may still hand out reserved values up to it"
        refuse_behind(definition, value, reached, why)
    elif isinstance(strategy, TableSequence):
        if not exists:
            raise UnknownSequence(definition.name, " in this database")
    elif isinstance(strategy, NativeSequence):
        cache = strategy.sequence(definition).cache or 1
        if caches_per_connection(connection.dialect) and cache > 1:
            why = "other connections may still hold cached values up to it"
            refuse_behind(definition, value, reached, why)


def _standing(
    connection: Connection, strategy: SequenceStrategy, definition: Definition
) -> tuple[bool, int | None]:
    """Whether *definition*'s counter row exists (a native sequence: whether it has one), and
    the furthest value taken or reserved (None: none, or the implementation cannot tell)."""
    if counts_in_rows(strategy):
        return read_counter(connection, definition)
    reached = getattr(strategy, "reached", None)
    return True, None if not callable(reached) else reached(connection, definition)


def _stored(connection: Connection, name: str) -> bool:
    """Whether *name* is a stored template (a parent placeholder in a pattern)."""
    row = load(connection, name) if len(name) <= NAME_MAX else None
    return row is not None and row.pattern is not None


def _settings(settings: dict[str, Any]) -> str:
    return " ".join(f"{key}={value}" for key, value in settings.items() if value is not None)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
