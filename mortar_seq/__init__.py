"""mortar_seq: gapless, fast and formatted identifiers from your database, on SQLAlchemy 2.x."""

from .at_commit import number_pending
from .auditing import Audit, audit
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
