"""The SQL tables (SQLAlchemy Core), named `wpk_*` so that they can share a file or a database
with other tables (an old Optuna study file at the default path, for one).

    wpk_meta          name -> value; "schema_version"
    wpk_workloads     key (primary), the Workload fields (shapes as JSON), digest, the counters
                      next_number and finish_seq (the row a claim locks)
    wpk_trials        (key, number) primary, unique (key, config_key); JSON config and times;
                      indexes (key, seq) for catching up, (key, state, seconds) for records
    wpk_confirmations (key, number) primary -> seconds (NULL: the re-measurement failed)
    wpk_records       key primary: the chosen trial, kept up to date by every write that
                      changes a workload's finished trials or confirmations
    wpk_selections    key primary: generated_config, default_seconds, candidates (JSON)
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

meta = Table(
    "wpk_meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

workloads = Table(
    "wpk_workloads",
    metadata,
    Column("key", String(512), primary_key=True),
    Column("target", String(32), nullable=False),
    Column("device", Text, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("template", String(128), nullable=False),
    Column("description", Text, nullable=False),
    Column("flops", BigInteger, nullable=False),
    Column("arg_shapes", Text, nullable=False),
    Column("output_shape", Text, nullable=False),
    Column("num_weights", Integer, nullable=False),
    Column("kernel_name", String(256), nullable=False),
    Column("module_text", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("next_number", Integer, nullable=False, default=0),
    Column("finish_seq", Integer, nullable=False, default=0),
)

trials = Table(
    "wpk_trials",
    metadata,
    Column("key", String(512), ForeignKey("wpk_workloads.key", ondelete="CASCADE"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("config", Text, nullable=False),
    Column("config_key", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("is_default", Boolean, nullable=False),
    Column("seconds", Float),
    Column("times", Text, nullable=False),
    Column("relative", Float),
    Column("error", Text),
    Column("compile_seconds", Float, nullable=False),
    Column("worker", String(256), nullable=False),
    Column("claimed_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("lease_expires", Float),
    Column("seq", Integer),
    Column("token", String(64)),
    UniqueConstraint("key", "config_key", name="wpk_trials_config"),
    Index("wpk_trials_seq", "key", "seq"),
    Index("wpk_trials_best", "key", "state", "seconds"),
)

confirmations = Table(
    "wpk_confirmations",
    metadata,
    Column("key", String(512), ForeignKey("wpk_workloads.key", ondelete="CASCADE"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("seconds", Float),
)

records = Table(
    "wpk_records",
    metadata,
    Column("key", String(512), ForeignKey("wpk_workloads.key", ondelete="CASCADE"), primary_key=True),
    Column("number", Integer, nullable=False),
    Column("config", Text, nullable=False),
    Column("seconds", Float, nullable=False),
    Column("confirmed", Boolean, nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("default_number", Integer),
    Column("default_seconds", Float),
    Column("trials", Integer, nullable=False),
    Column("failures", Integer, nullable=False),
)

selections = Table(
    "wpk_selections",
    metadata,
    Column("key", String(512), primary_key=True),
    Column("generated_config", Text, nullable=False),
    Column("default_seconds", Float),
    Column("candidates", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)
