"""The schema behind the `ports.repositories` adapter, as SQLAlchemy Core tables.

`migrations/versions/` must create exactly this; a test compares the two.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    Double,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from adapters.sql.types import UtcDateTime

#: Identifiers (user, video, event, feed session, variant) hold up to this many characters.
ID_LENGTH = 128

# Explicit constraint names make migrations reproducible and let SQLite batch mode find them.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BIGINT on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is an auto-incrementing rowid.
_SURROGATE_KEY = BigInteger().with_variant(Integer(), "sqlite")

user_interactions = Table(
    "user_interactions",
    metadata,
    # The nightly export reads rows above its last watermark, so ids must only ever grow:
    # sqlite_autoincrement stops SQLite from reusing the id of a deleted last row.
    Column("id", _SURROGATE_KEY, primary_key=True, autoincrement=True),
    Column("event_id", String(ID_LENGTH), nullable=False),
    Column("user_id", String(ID_LENGTH), nullable=False),
    Column("video_id", String(ID_LENGTH), nullable=False),
    Column("interaction_type", String(16), nullable=False),
    Column("watch_time_ms", Integer, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("feed_session_id", String(ID_LENGTH), nullable=True),
    Column("algorithm", String(16), nullable=True),
    Column("experiment_variant_id", String(ID_LENGTH), nullable=True),
    Column("recommendation_score", Double, nullable=True),
    UniqueConstraint("event_id"),
    # trending: recent interactions. The viewer's state on every new feed session (what they
    # saw, what they liked lately) reads by (user_id, occurred_at); no other index: each one
    # costs every accepted event a B-tree insert (migration 0005 dropped two no query used).
    Index(None, "occurred_at"),
    Index(None, "user_id", "occurred_at"),
    sqlite_autoincrement=True,
)

feed_cache = Table(
    "feed_cache",
    metadata,
    Column("id", _SURROGATE_KEY, primary_key=True, autoincrement=True),
    Column("feed_session_id", String(ID_LENGTH), nullable=False),
    Column("page_number", Integer, nullable=False),
    Column("user_id", String(ID_LENGTH), nullable=False),
    Column("algorithm", String(16), nullable=False),
    Column("fallback_reason", String(32), nullable=True),
    Column("model_version", String(ID_LENGTH), nullable=True),
    Column("experiment_variant_id", String(ID_LENGTH), nullable=True),
    # [{"videoId": ..., "score": ...}, ...] in rank order
    Column("items", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # "model", "realtime" or "none" (domain.feed.Personalization)
    Column("personalization", String(16), nullable=False, server_default=text("'none'")),
    UniqueConstraint("feed_session_id", "page_number"),
    # rotation: the videos served to a viewer lately
    Index(None, "user_id", "created_at"),
)

outbox = Table(
    "outbox",
    metadata,
    # The relay publishes in id order, so ids must only ever grow (see user_interactions.id).
    Column("id", _SURROGATE_KEY, primary_key=True, autoincrement=True),
    Column("topic", String(255), nullable=False),
    Column("key", String(255), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    # Sent rows pile up; the relay only ever looks for the unsent ones, oldest first.
    Index(
        "ix_outbox_pending",
        "id",
        postgresql_where=text("sent_at IS NULL"),
        sqlite_where=text("sent_at IS NULL"),
    ),
    sqlite_autoincrement=True,
)

feed_sessions = Table(
    "feed_sessions",
    metadata,
    Column("feed_session_id", String(ID_LENGTH), primary_key=True),
    Column("user_id", String(ID_LENGTH), nullable=False),
    Column("algorithm", String(16), nullable=False),
    Column("fallback_reason", String(32), nullable=True),
    Column("model_version", String(ID_LENGTH), nullable=True),
    Column("experiment_variant_id", String(ID_LENGTH), nullable=True),
    # [{"videoId": ..., "score": ...}, ...] best first: the pool the session's pages are cut from
    Column("candidates", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("personalization", String(16), nullable=False, server_default=text("'none'")),
    # sessions are only ever looked up by id; this is for deleting expired ones by age
    Index(None, "created_at"),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(ID_LENGTH), primary_key=True),
    Column("holder", String(255), nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)

shared_boards = Table(
    "shared_boards",
    metadata,
    # One row per board (trending, popularity, exploration): what its lease holder computed
    # last (domain/shared_boards.py), for every other process to read.
    Column("name", String(ID_LENGTH), primary_key=True),
    Column("computed_at", UtcDateTime, nullable=False),
    Column("payload", JSON, nullable=False),
)

export_watermarks = Table(
    "export_watermarks",
    metadata,
    # One row per export (e.g. "user_interactions"): the highest source id it has exported.
    Column("name", String(ID_LENGTH), primary_key=True),
    Column("last_id", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

retrain_runs = Table(
    "retrain_runs",
    metadata,
    # The embedded run log of the nightly retrain: one row per run (domain.retrain.RetrainRun).
    Column("run_id", String(64), primary_key=True),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("status", String(16), nullable=False),
    Column("failed_stage", String(16), nullable=True),
    Column("rows_exported", BigInteger, nullable=False),
    Column("rows_trained", BigInteger, nullable=False),
    Column("model_version", String(ID_LENGTH), nullable=True),
    Column("serving_version", String(ID_LENGTH), nullable=True),
    # {"precision_at_10": ..., "recall_at_10": ..., "auc": ...}
    Column("candidate_metrics", JSON, nullable=True),
    Column("serving_metrics", JSON, nullable=True),
    Column("error", Text, nullable=True),
    Column("note", Text, nullable=True),
    Column("recorded_at", UtcDateTime, nullable=False),
    # the report reads the newest runs; the next run looks for ones still "running"
    Index(None, "started_at"),
    Index(None, "status"),
)

experiment_report_rows = Table(
    "experiment_report_rows",
    metadata,
    # The nightly experiment readout (domain.experiment_report.report_rows): per day read, one
    # row per experiment, variant and metric; a rerun of the day replaces its rows.
    Column("report_date", Date, primary_key=True),
    Column("experiment", String(ID_LENGTH), primary_key=True),
    Column("variant", String(ID_LENGTH), primary_key=True),
    Column("metric", String(64), primary_key=True),
    Column("value", Double, nullable=True),
    Column("low", Double, nullable=True),
    Column("high", Double, nullable=True),
    Column("lift", Double, nullable=True),
    Column("lift_low", Double, nullable=True),
    Column("lift_high", Double, nullable=True),
    Column("verdict", String(16), nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
)
