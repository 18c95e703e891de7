"""mortar_seq: gapless, fast and formatted identifiers from your database, on SQLAlchemy 2.x.

The names below are imported on first use (PEP 562), not with the package: the
``mortar-seq`` script, which imports this package first, answers ``--version`` and
``--help`` without importing SQLAlchemy (measured in benchmarks/cli_startup.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .admin.audit import Audit, audit
    from .defaults import column_default
    from .definition import Definition
    from .errors import (
        AuditError,
        SequenceConfigError,
        SequenceError,
        SequenceExhausted,
        SequenceLocked,
        TemplateError,
        UnknownSequence,
    )
    from .importing import import_django_sequences, import_invenio
    from .model import create_tables
    from .numbering.at_commit import number_pending
    from .one_call import delete_sequence, get_last_value, get_next_value, get_next_values
    from .registry import get_sequence, get_template, register_sequence, register_template
    from .retry import run_in_transaction, run_in_transaction_async, worth_retrying
    from .sequence import Sequence
    from .strategies import (
        NativeSequence,
        PooledSequence,
        SequenceStrategy,
        TableSequence,
        register_implementation,
    )
    from .template import Template

__version__ = "0.1.0.dev0"

# Each public name and the module it comes from, as the imports above say.
_HOMES = {
    "number_pending": "numbering.at_commit",
    "Audit": "admin.audit",
    "audit": "admin.audit",
    "column_default": "defaults",
    "Definition": "definition",
    "AuditError": "errors",
    "SequenceConfigError": "errors",
    "SequenceError": "errors",
    "SequenceExhausted": "errors",
    "SequenceLocked": "errors",
    "TemplateError": "errors",
    "UnknownSequence": "errors",
    "import_django_sequences": "importing",
    "import_invenio": "importing",
    "create_tables": "model",
    "delete_sequence": "one_call",
    "get_last_value": "one_call",
    "get_next_value": "one_call",
    "get_next_values": "one_call",
    "get_sequence": "registry",
    "get_template": "registry",
    "register_sequence": "registry",
    "register_template": "registry",
    "run_in_transaction": "retry",
    "run_in_transaction_async": "retry",
    "worth_retrying": "retry",
    "Sequence": "sequence",
    "NativeSequence": "strategies",
    "PooledSequence": "strategies",
    "SequenceStrategy": "strategies",
    "TableSequence": "strategies",
    "register_implementation": "strategies",
    "Template": "template",
}


if not TYPE_CHECKING:  # type checkers see the imports above, and no fallback to hide a typo

    def __getattr__(name: str) -> object:
        home = _HOMES.get(name)
        if home is not None:
            value = getattr(importlib.import_module(f".{home}", __name__), name)
            globals()[name] = value  # once: later lookups find it without this function
            return value
        if not name.startswith("_"):  # never __main__, which runs the command line
            # A submodule, as ``import mortar_seq`` used to import them all:
            # ``mortar_seq.model.Base`` keeps working after a plain ``import mortar_seq``.
            try:
                return importlib.import_module(f".{name}", __name__)
            except ModuleNotFoundError as exc:
                if exc.name != f"{__name__}.{name}":
                    raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*globals(), *_HOMES})


__all__ = [
    "Audit",
    "AuditError",
    "Definition",
    "NativeSequence",
    "PooledSequence",
    "Sequence",
    "SequenceConfigError",
    "SequenceError",
    "SequenceExhausted",
    "SequenceLocked",
    "SequenceStrategy",
    "TableSequence",
    "Template",
    "TemplateError",
    "UnknownSequence",
    "audit",
    "column_default",
    "create_tables",
    "delete_sequence",
    "get_last_value",
    "get_next_value",
    "get_next_values",
    "get_sequence",
    "get_template",
    "import_django_sequences",
    "import_invenio",
    "number_pending",
    "register_implementation",
    "register_sequence",
    "register_template",
    "run_in_transaction",
    "run_in_transaction_async",
    "worth_retrying",
]
