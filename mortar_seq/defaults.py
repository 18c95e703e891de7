"""Column defaults by name, for models defined before anything is registered."""

from __future__ import annotations

import collections.abc as abc
from typing import Any

from . import registry as registry_module
from .definition import check_name
from .errors import SequenceConfigError, UnknownSequence
from .numbering.at_commit import numbering_default
from .numbering.at_flush import numbered_row, refuse_from_select, row_keywords
from .numbering.pending import Series
from .sequence import Sequence
from .template import Template


def column_default(
    name: str, *, at_commit: bool = False, **keywords: object
) -> abc.Callable[[Any], object]:
    """Return a column default that numbers each new row from sequence or template *name*.

    ``mapped_column(BigInteger, default=column_default("invoice"))``. The name is resolved
    on first use, in the flush's transaction: the process's registry, else what the
    flush's database stores; so a model module needs no session at import. A template's
    keywords default to the row's own values; explicit *keywords* win. With *at_commit*,
    the row is written with the column NULL and numbered just before COMMIT, as
    `Sequence.default_at_commit` does.

    .. versionadded:: 0.1
    """
    check_name(name)
    if not isinstance(at_commit, bool):
        raise TypeError(f"at_commit must be True or False, not {at_commit!r}")
    if at_commit:
        return _at_commit(name, keywords)

    def default(context: Any) -> object:
        connection = context.connection
        found = _resolve(name, connection)
        if isinstance(found, Template):
            refuse_from_select(context)
            return found.next(connection, **{**row_keywords(context), **keywords})
        _refuse_keywords(name, keywords)
        return numbered_row(context, default, found.next, found.next_many)

    return default


def _at_commit(name: str, keywords: dict[str, object]) -> abc.Callable[[Any], object]:
    def series(context: Any) -> Series:
        found = _resolve(name, context.connection)
        if isinstance(found, Template):
            return found.counter_at_commit(context, keywords)
        _refuse_keywords(name, keywords)
        return found

    return numbering_default(series)


def _refuse_keywords(name: str, keywords: dict[str, object]) -> None:
    if keywords:
        raise SequenceConfigError(
            f"column_default({name!r}, ...) gives keywords, but {name!r} is a sequence: "
            "only templates take keywords"
        )


def _resolve(name: str, connection: Any) -> Sequence | Template:
    registry = registry_module.registry
    try:
        return registry.get(name, connection)
    except UnknownSequence:
        pass
    try:
        return registry.get_template(name, connection)
    except UnknownSequence as exc:
        raise UnknownSequence(name, _UNREGISTERED) from exc


# Unlike get_next_value, a flush never creates a sequence: it could not guess its settings.
_UNREGISTERED = (
    " (nor a template) in this process or this database: register it before the flush, "
    "with register_sequence or register_template (get_next_value creates a sequence "
    "on its first call)"
)
