"""Woodpecker's tuning database: workloads (kernel signatures), their trials, confirmations,
records and implementation selections, with a schema (`schema`), behind one interface
(`base.TuningDatabase`), in SQLite, PostgreSQL or a journal file (`open.open_database`).

No MLIR and no Optuna here: compile, the report and a GPU host read records with this package
alone. See README.md beside this file for the tables and the claim protocol.
"""

from woodpecker.database.base import DEFAULT_LEASE_S, TransferSummary, TuningDatabase
from woodpecker.database.errors import ClaimLostError, DatabaseError
from woodpecker.database.open import database_exists, default_db_path, default_location, open_database
from woodpecker.database.schema import (
    COMPLETE,
    FAILED,
    FINISHED,
    RUNNING,
    SCHEMA_VERSION,
    CandidateTiming,
    Claim,
    Counts,
    Record,
    Selection,
    Trial,
    Workload,
    config_key,
)

__all__ = [
    "COMPLETE",
    "DEFAULT_LEASE_S",
    "FAILED",
    "FINISHED",
    "RUNNING",
    "SCHEMA_VERSION",
    "CandidateTiming",
    "Claim",
    "ClaimLostError",
    "Counts",
    "DatabaseError",
    "Record",
    "Selection",
    "TransferSummary",
    "Trial",
    "TuningDatabase",
    "Workload",
    "config_key",
    "database_exists",
    "default_db_path",
    "default_location",
    "open_database",
]
