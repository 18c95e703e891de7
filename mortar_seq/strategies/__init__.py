"""How sequences are stored and advanced: the strategy protocol and its implementations."""

from .native import NativeSequence, native_name
from .pooled import PooledSequence
from .protocol import SequenceStrategy, counts_in_rows, gapless, reaching, restartable
from .registration import (
    ENTRY_POINT_GROUP,
    implementation,
    register_implementation,
    stored_strategy,
    strategy_for,
    strategy_options,
)
from .table import TableSequence, hold_counter, read_counter, refuse_behind, restart_counter

__all__ = [
    "ENTRY_POINT_GROUP",
    "NativeSequence",
    "PooledSequence",
    "SequenceStrategy",
    "TableSequence",
    "counts_in_rows",
    "gapless",
    "hold_counter",
    "implementation",
    "native_name",
    "reaching",
    "read_counter",
    "refuse_behind",
    "register_implementation",
    "restart_counter",
    "restartable",
    "stored_strategy",
    "strategy_for",
    "strategy_options",
]
