"""Kinds: implementations known by name, in this process and through entry points."""

from __future__ import annotations

import dataclasses
import threading
from importlib.metadata import entry_points
from typing import Any, TypeVar, cast

from ..errors import SequenceConfigError
from .native import NativeSequence
from .pooled import PooledSequence
from .protocol import REQUIRED_VERBS, SequenceStrategy
from .table import TableSequence

# Other packages make their implementations known to every process (the command line
# included) with an entry point in this group, named after the kind:
#   [options.entry_points]
#   mortar_seq.implementations =
#       even = mortar_seq_example_plugin:EvenSequence
ENTRY_POINT_GROUP = "mortar_seq.implementations"
KIND_MAX = 40  # the stored column's length

Implementation = TypeVar("Implementation", bound=type)

_lock = threading.Lock()
_kinds: dict[str, type[Any]] = {
    TableSequence.kind: TableSequence,
    NativeSequence.kind: NativeSequence,
    PooledSequence.kind: PooledSequence,
}


def register_implementation(cls: Implementation) -> Implementation:
    """Make the `SequenceStrategy` class *cls* known by its ``kind`` in this process; return it.

    Usable as a class decorator. Then ``impl=cls`` (or an instance, for options) is
    accepted by `register_sequence` and `register_template`, and sequences stored with its
    kind are rebuilt from their stored options. *cls* must be a frozen dataclass whose
    fields all have defaults and are JSON values (they are stored with each sequence),
    with a ``kind`` class attribute (a string of 1 to 40 characters that no other class
    uses) and the protocol's required verbs. Registering the same class again does
    nothing; a class of the same module and qualified name (its module reloaded, a
    notebook cell run again) replaces it; anything else raises `SequenceConfigError`.

    Other processes and the command line find it through an entry point in the
    ``mortar_seq.implementations`` group named after its kind.

    .. versionadded:: 0.1
    """
    kind = _checked(cls)
    with _lock:
        known = _kinds.setdefault(kind, cls)
        if known is not cls and _named(known) == _named(cls):
            known = _kinds[kind] = cls  # defined again (a module reloaded): the newer wins
    if known is not cls:
        raise SequenceConfigError(
            f"the kind {kind!r} is already {_named(known)}'s; {_named(cls)} needs another kind"
        )
    return cls


def strategy_for(impl: object) -> SequenceStrategy:
    """Return the strategy *impl* names: None (the default), a registered class or an instance."""
    if impl is None:
        return TableSequence()
    cls = impl if isinstance(impl, type) else type(impl)
    kind = getattr(cls, "kind", None)
    if not isinstance(kind, str) or _known(kind) is not cls:
        known = ", ".join(each.__name__ for each in _kinds.values())
        raise SequenceConfigError(
            f"impl must be one of {known} (a class or an instance), or a class made known "
            f"with mortar_seq.register_implementation, not {impl!r}"
        )
    return cast(SequenceStrategy, cls() if impl is cls else impl)


def stored_strategy(kind: str, options: dict[str, Any]) -> SequenceStrategy:
    """Rebuild the strategy stored as *kind* with *options*."""
    return cast(SequenceStrategy, implementation(kind)(**options))


def implementation(kind: str) -> type[Any]:
    """Return the class known as *kind*, looking for its entry point the first time."""
    cls = _known(kind)
    if cls is None:
        raise SequenceConfigError(
            f"no implementation of the {kind!r} kind is known here: register its class with "
            f"mortar_seq.register_implementation(...), or install the package that declares "
            f"it as the entry point {kind!r} in the {ENTRY_POINT_GROUP!r} group"
        )
    return cls


def strategy_options(strategy: SequenceStrategy) -> dict[str, Any]:
    """Return the options stored with a strategy (its dataclass fields)."""
    return dataclasses.asdict(cast(Any, strategy))


def _known(kind: str) -> type[Any] | None:
    """The class of *kind*: registered here, else loaded from its entry point (once)."""
    with _lock:
        found = _kinds.get(kind)
    if found is not None:
        return found
    for point in entry_points(group=ENTRY_POINT_GROUP, name=kind):
        try:
            loaded = point.load()
        except Exception as exc:  # an ImportError, or the plug-in's own module failing
            raise SequenceConfigError(
                f"the entry point {kind!r} in {ENTRY_POINT_GROUP!r} ({point.value}) "
                f"failed to load: {exc}"
            ) from exc
        if getattr(loaded, "kind", None) != kind:
            raise SequenceConfigError(
                f"the entry point {kind!r} in {ENTRY_POINT_GROUP!r} ({point.value}) is not "
                f"a class of kind {kind!r}"
            )
        return register_implementation(cast(type, loaded))
    return None


def _checked(cls: object) -> str:
    if not isinstance(cls, type):
        raise SequenceConfigError(f"register_implementation takes a class, not {cls!r}")
    kind = getattr(cls, "kind", None)
    if not isinstance(kind, str) or not kind.strip() or len(kind) > KIND_MAX:
        raise SequenceConfigError(
            f"{_named(cls)} needs a class attribute kind: a string of 1 to {KIND_MAX} "
            f"characters, not {kind!r}"
        )
    missing = [verb for verb in REQUIRED_VERBS if not callable(getattr(cls, verb, None))]
    if missing:
        raise SequenceConfigError(
            f"{_named(cls)} (kind {kind!r}) lacks the SequenceStrategy verb(s) {', '.join(missing)}"
        )
    params = getattr(cls, "__dataclass_params__", None)
    if not dataclasses.is_dataclass(cls) or not getattr(params, "frozen", False):
        raise SequenceConfigError(
            f"{_named(cls)} (kind {kind!r}) must be a @dataclass(frozen=True): its fields "
            "are the options stored with each sequence"
        )
    required = [
        field.name
        for field in dataclasses.fields(cls)
        if field.init
        and field.default is dataclasses.MISSING
        and field.default_factory is dataclasses.MISSING
    ]
    if required:
        raise SequenceConfigError(
            f"{_named(cls)} (kind {kind!r}): every option needs a default (impl={cls.__name__} "
            f"means {cls.__name__}()); {', '.join(required)} has none"
        )
    return kind


def _named(cls: Any) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
