"""The one settings object, read from the environment here and nowhere else (12-factor).

Every field has one environment variable, one default and one line in the README table.
Longer than the modules around it on purpose: one flat list of every setting of every process
is what an operator reads, and splitting it would scatter the names across files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit


class SettingsError(ValueError):
    """An environment variable holds a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    # --- general -------------------------------------------------------------------------
    #: FEEDREC_DATA_DIR: folder for the embedded defaults (SQLite file, secrets, models, exports).
    data_dir: Path = Path("var")
    #: LOG_LEVEL: level of the JSON log lines.
    log_level: str = "INFO"

    # --- web -----------------------------------------------------------------------------
    #: WEB_BIND: host:port gunicorn listens on.
    web_bind: str = "127.0.0.1:8000"
    #: WEB_WORKERS: gunicorn gevent worker processes.
    web_workers: int = 2
    #: MAX_REQUEST_BYTES: larger request bodies are refused with 413.
    max_request_bytes: int = 1_048_576
    #: RATE_LIMIT_FEED: GET /feed/recommendations per caller (flask-limiter syntax); empty: none.
    rate_limit_feed: str = "120/minute"
    #: RATE_LIMIT_INTERACTIONS: POST /feed/interactions per caller; empty: none.
    rate_limit_interactions: str = "600/minute"
    #: RATE_LIMIT_STORAGE_URI: where the counters live; memory:// counts per worker process.
    rate_limit_storage_uri: str = "memory://"

    # --- storage -------------------------------------------------------------------------
    #: DATABASE_URL: SQLAlchemy URL; empty means SQLite at <data_dir>/feedrec.db.
    database_url: str = ""

    # --- auth ----------------------------------------------------------------------------
    #: JWT_SECRET: HS256 secret; empty means the one kept in <data_dir>/jwt-secret (created once).
    jwt_secret: str = ""
    #: JWT_PUBLIC_KEY_FILE: PEM public key; when set, RS256 tokens it verifies are accepted too.
    jwt_public_key_file: str = ""
    #: JWT_AUDIENCE: the `aud` every token must carry.
    jwt_audience: str = "feedrec"
    #: JWT_LEEWAY_S: clock skew tolerated on `exp`/`nbf`, in seconds.
    jwt_leeway_s: int = 30

    # --- kafka ---------------------------------------------------------------------------
    #: KAFKA_BOOTSTRAP_SERVERS: comma-separated host:port list; empty disables publishing (the
    #: outbox keeps every event until a broker is configured).
    kafka_bootstrap_servers: str = ""
    #: KAFKA_TOPIC: the interactions topic.
    kafka_topic: str = "feed.interactions.v1"
    #: EMBEDDED_KAFKA_BIND: where `feedrec up` runs its own broker when no bootstrap is set.
    embedded_kafka_bind: str = "127.0.0.1:9092"
    #: KAFKA_TOPIC_PARTITIONS: partitions of the topic when the relay creates it.
    kafka_topic_partitions: int = 6
    #: KAFKA_REPLICATION_FACTOR: replicas of each partition when the relay creates the topic.
    kafka_replication_factor: int = 1
    #: KAFKA_LINGER_MS: how long the producer waits to fill a batch, in milliseconds. The relay
    #: hands the producer a whole round at once, so the round is the batch and linger only
    #: delays it (bench/ingest.py).
    kafka_linger_ms: int = 0
    #: KAFKA_COMPRESSION: producer compression codec (gzip, or none).
    kafka_compression: str = "gzip"
    #: RELAY_POLL_INTERVAL_MS: the relay's pause between looks at an empty outbox, milliseconds.
    relay_poll_interval_ms: int = 5
    #: RELAY_BATCH_SIZE: the most outbox messages the relay publishes in one round.
    relay_batch_size: int = 2000
    #: RELAY_PUBLISH_TIMEOUT_S: seconds the relay waits for the broker to acknowledge a round.
    relay_publish_timeout_s: float = 5.0
    #: RELAY_LEASE_TTL_S: seconds a relay's lease lasts unrenewed; a crashed relay's successor
    #: waits at most this long before it publishes.
    relay_lease_ttl_s: float = 15.0
    #: OUTBOX_RETENTION_S: seconds sent outbox messages are kept before the relay deletes them.
    outbox_retention_s: int = 3600

    # --- observability -------------------------------------------------------------------
    #: SEGMENT_WRITE_KEY: Segment source write key; empty switches analytics off.
    segment_write_key: str = ""
    #: SEGMENT_HOST: base URL batches are POSTed to (`<host>/v1/batch`).
    segment_host: str = "https://api.segment.io"
    #: DD_AGENT_HOST: host of the DogStatsD agent (UDP); empty switches metrics off.
    dd_agent_host: str = ""
    #: DD_DOGSTATSD_PORT: UDP port of the DogStatsD agent.
    dd_dogstatsd_port: int = 8125
    #: DD_TAGS: comma-separated tags added to every metric and event, e.g. `env:prod,service:x`.
    dd_tags: str = ""

    # --- feed ----------------------------------------------------------------------------
    #: FEED_POOL_SIZE: candidates the first page of a session ranks; the session's pages share them.
    feed_pool_size: int = 100
    #: FEED_SESSION_TTL_S: how long a feed session's cursors stay valid, in seconds.
    feed_session_ttl_s: int = 3600
    #: FEED_EXPERIMENT: JSON experiment (see domain/experiments.py); empty means none.
    feed_experiment: str = ""
    #: TRENDING_REFRESH_S: seconds between recomputations of the in-memory trending feed.
    trending_refresh_s: float = 60.0
    #: TRENDING_SIZE: how many videos the trending feed holds.
    trending_size: int = 1000
    #: FEED_SEEN_TTL_S: seconds a video the viewer interacted with stays out of their feed
    #: (a hide: as long as the interaction is stored).
    feed_seen_ttl_s: int = 2_592_000
    #: FEED_ROTATION_S: seconds back a new session leaves out videos served to the viewer.
    feed_rotation_s: int = 21_600
    #: FEED_EXPLORATION: share of each pool for videos the model does not know yet (0..0.5).
    feed_exploration: float = 0.1
    #: POPULARITY_REFRESH_S: seconds between recomputations of the all-time popularity board.
    popularity_refresh_s: float = 600.0
    #: WEB_STALL_THRESHOLD_MS: a web worker's event loop blocked longer than this is a stall,
    #: counted and logged (app/stall_detector.py); 0 turns the detector off.
    web_stall_threshold_ms: float = 20.0

    # --- retrain -------------------------------------------------------------------------
    #: EXPORT_URI: folder, file:// or s3://bucket/prefix of the parquet export of interactions;
    #: empty means <data_dir>/exports.
    export_uri: str = ""
    #: IMPRESSIONS_EXPORT_URI: folder, file:// or s3://bucket/prefix of the parquet export of
    #: impressions (items served); empty means <data_dir>/impressions.
    impressions_export_uri: str = ""
    #: S3_ENDPOINT_URL: S3-compatible server for s3:// exports and models (`http://host:port`,
    #: or `host:port` for https); empty means AWS S3.
    s3_endpoint_url: str = ""
    #: EXPORT_CHUNK_ROWS: rows the export reads, writes and records progress for at a time.
    export_chunk_rows: int = 100_000
    #: EXPORT_LAG_S: seconds a row must be old (by received_at) before the export takes it.
    export_lag_s: int = 60
    #: RETRAIN_AT: UTC time of day (HH:MM) the worker runs the nightly retrain.
    retrain_at: str = "02:00"
    #: TRAINING_WINDOW_DAYS: days of interactions a retrain reads; the newest day is held out.
    training_window_days: int = 90
    #: QUALITY_TOLERANCE: the most a new model's precision@10 or AUC may fall below the serving
    #: model's, as a fraction of it, and still be published.
    quality_tolerance: float = 0.05
    #: TRAIN_EPOCHS: LightFM training epochs.
    train_epochs: int = 30
    #: TRAIN_COMPONENTS: LightFM embedding dimensions.
    train_components: int = 64
    #: TRAIN_THREADS: LightFM training threads.
    train_threads: int = 2
    #: RETRAIN_SEARCH_BUDGET_S: seconds the nightly search may spend on trials (0: no search).
    retrain_search_budget_s: float = 120.0
    #: RETRAIN_FIT_BUDGET_S: seconds one fit of the searched configuration may take (the
    #: candidate's, and the refit's); the search averages as many seeds as fit (0: TRAIN_SEEDS).
    retrain_fit_budget_s: float = 150.0
    #: TRAIN_SEEDS: models averaged into one published model (lowers the run-to-run spread).
    train_seeds: int = 3
    #: RETRAIN_TRAIN_BUDGET_S: seconds the candidate's training, and its refit, may each take
    #: (fewer seeds, then fewer epochs, when the window is large); 0: no bound.
    retrain_train_budget_s: float = 900.0
    #: SERVE_COMPONENTS: width of the published vectors: a seed average (seeds x components
    #: wide) is cut to its best rank-SERVE_COMPONENTS scores, since every Recommend's cost
    #: grows linearly with the width (0: the full width).
    serve_components: int = 64
    #: RETRAIN_LEASE_TTL_S: seconds the retrain lease outlives its last renewal (at each stage).
    retrain_lease_ttl_s: int = 7200
    #: SNOWFLAKE_ACCOUNT: Snowflake account of the run log; empty keeps the run log in the
    #: service's own database.
    snowflake_account: str = ""
    #: SNOWFLAKE_USER: Snowflake login name.
    snowflake_user: str = ""
    #: SNOWFLAKE_PASSWORD: Snowflake password.
    snowflake_password: str = ""
    #: SNOWFLAKE_DATABASE: database of the run log table.
    snowflake_database: str = "FEEDREC"
    #: SNOWFLAKE_SCHEMA: schema of the run log table.
    snowflake_schema: str = "PUBLIC"
    #: SNOWFLAKE_WAREHOUSE: warehouse the run log's statements run on; empty: the user's default.
    snowflake_warehouse: str = ""
    #: SNOWFLAKE_HOST: endpoint host; empty: derived from the account.
    snowflake_host: str = ""
    #: SNOWFLAKE_PORT: endpoint port.
    snowflake_port: int = 443
    #: SNOWFLAKE_PROTOCOL: https, or http for a local fake.
    snowflake_protocol: str = "https"

    # --- model service -------------------------------------------------------------------
    #: LIGHTFM_BIND: host:port the lightfm gRPC model service listens on.
    lightfm_bind: str = "127.0.0.1:50051"
    #: LIGHTFM_TARGET: where the web service reaches the model service (gRPC target).
    lightfm_target: str = "127.0.0.1:50051"
    #: MODEL_STORE_URI: folder or s3:// prefix of model artifacts; empty means <data_dir>/models.
    model_store_uri: str = ""
    #: LIGHTFM_ADMIN_TOKEN: bearer token LoadModel must carry; empty leaves LoadModel open.
    lightfm_admin_token: str = ""
    #: LIGHTFM_MAX_WORKERS: threads serving gRPC calls in the model service.
    lightfm_max_workers: int = 8
    #: LIGHTFM_POLL_INTERVAL_S: seconds between checks of the published model; 0 disables.
    lightfm_poll_interval_s: float = 60.0
    #: LIGHTFM_SHUTDOWN_GRACE_S: seconds in-flight calls get to finish after SIGTERM.
    lightfm_shutdown_grace_s: float = 5.0
    #: LIGHTFM_DEADLINE_MS: the web service's budget for one model call, retries included.
    lightfm_deadline_ms: int = 150
    #: LIGHTFM_BREAKER_FAILURES: consecutive failed model calls that open the circuit breaker.
    lightfm_breaker_failures: int = 5
    #: LIGHTFM_BREAKER_COOLDOWN_S: seconds the open breaker rejects calls before one probe.
    lightfm_breaker_cooldown_s: float = 5.0

    # --- scale: approximate retrieval, TLS between web and model service (docs/deployment.md)
    #: LIGHTFM_ANN_MIN_ITEMS: catalogue size from which the nightly job adds an approximate
    #: candidate index to the model (then ranked by the index's candidates, scored exactly).
    lightfm_ann_min_items: int = 1_200_000
    #: LIGHTFM_ANN_NPROBE: index lists searched per call (higher: better recall, slower); the
    #: nightly job stores it in the index it builds; 0: 1.5% of the lists, at least 64.
    lightfm_ann_nprobe: int = 0
    #: LIGHTFM_TLS_CERT_FILE: PEM certificate chain the model service presents; empty: plaintext.
    lightfm_tls_cert_file: str = ""
    #: LIGHTFM_TLS_KEY_FILE: PEM private key of LIGHTFM_TLS_CERT_FILE.
    lightfm_tls_key_file: str = ""
    #: LIGHTFM_TLS_CLIENT_CA_FILE: PEM CA the model service requires client certificates from
    #: (mutual TLS); empty: no client certificate asked for.
    lightfm_tls_client_ca_file: str = ""
    #: LIGHTFM_TLS_CA_FILE: PEM CA the web service and worker trust for the model service's
    #: certificate; empty: a plaintext channel.
    lightfm_tls_ca_file: str = ""
    #: LIGHTFM_TLS_CLIENT_CERT_FILE: PEM certificate the web service and worker present (mutual
    #: TLS); empty: none.
    lightfm_tls_client_cert_file: str = ""
    #: LIGHTFM_TLS_CLIENT_KEY_FILE: PEM private key of LIGHTFM_TLS_CLIENT_CERT_FILE.
    lightfm_tls_client_key_file: str = ""
    #: LIGHTFM_TLS_SERVER_NAME: name checked in the model service's certificate; empty: the
    #: target's host.
    lightfm_tls_server_name: str = ""

    # --- credentials for managed services (docs/security.md, "Credentials on every wire") --
    #: KAFKA_SECURITY_PROTOCOL: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, for every Kafka client.
    kafka_security_protocol: str = "PLAINTEXT"
    #: KAFKA_SASL_MECHANISM: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (an MSK IAM
    #: token); needed with the SASL_ protocols.
    kafka_sasl_mechanism: str = ""
    #: KAFKA_SASL_USERNAME: the SASL PLAIN/SCRAM user.
    kafka_sasl_username: str = ""
    #: KAFKA_SASL_PASSWORD: the SASL PLAIN/SCRAM password (or KAFKA_SASL_PASSWORD_FILE).
    kafka_sasl_password: str = ""
    #: KAFKA_SASL_PASSWORD_FILE: a file holding the SASL password (a mounted secret); used when
    #: KAFKA_SASL_PASSWORD is empty.
    kafka_sasl_password_file: str = ""
    #: KAFKA_MSK_REGION: AWS region of the MSK cluster OAUTHBEARER tokens are signed for.
    kafka_msk_region: str = ""
    #: KAFKA_MSK_ROLE_ARN: IAM role assumed to sign them (e.g. feed-rec-producer); empty: the
    #: default AWS credential chain (the instance's or task's own role).
    kafka_msk_role_arn: str = ""
    #: KAFKA_SSL_CAFILE: PEM CA trusted for the brokers' certificates; empty: the system's CAs.
    kafka_ssl_cafile: str = ""
    #: KAFKA_SSL_CERTFILE: PEM client certificate (mutual TLS); empty: none.
    kafka_ssl_certfile: str = ""
    #: KAFKA_SSL_KEYFILE: PEM private key of KAFKA_SSL_CERTFILE.
    kafka_ssl_keyfile: str = ""
    #: KAFKA_SSL_CHECK_HOSTNAME: check the broker's name in its certificate.
    kafka_ssl_check_hostname: bool = True
    #: DATABASE_SSLMODE: libpq sslmode for PostgreSQL (verify-full checks CA and host name);
    #: empty: libpq's default (prefer). Each DATABASE_SSL* parameter the URL carries wins.
    database_sslmode: str = ""
    #: DATABASE_SSLROOTCERT: PEM CA the PostgreSQL server's certificate must chain to.
    database_sslrootcert: str = ""
    #: DATABASE_SSLCERT: PEM client certificate for PostgreSQL; empty: none.
    database_sslcert: str = ""
    #: DATABASE_SSLKEY: PEM private key of DATABASE_SSLCERT.
    database_sslkey: str = ""
    #: SNOWFLAKE_PRIVATE_KEY_PATH: PEM PKCS#8 private key for key-pair sign-in (SNOWFLAKE_JWT);
    #: when set, used instead of SNOWFLAKE_PASSWORD.
    snowflake_private_key_path: str = ""
    #: SNOWFLAKE_PRIVATE_KEY_PASSPHRASE: passphrase of an encrypted private key; empty: none.
    snowflake_private_key_passphrase: str = ""
    #: SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE: a file holding that passphrase; used when
    #: SNOWFLAKE_PRIVATE_KEY_PASSPHRASE is empty.
    snowflake_private_key_passphrase_file: str = ""

    # --- token lifetime and issuer (docs/security.md, "Abuse and identity") ----------------
    #: JWT_MAX_LIFETIME_S: the longest a viewer token may live (`exp - iat`, which it must carry).
    jwt_max_lifetime_s: int = 604_800
    #: JWT_ISSUER: the `iss` every token must carry; empty: not checked.
    jwt_issuer: str = ""

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return _with_database_tls(self.database_url, self)
        return f"sqlite:///{(self.data_dir / 'feedrec.db').resolve()}"

    @property
    def resolved_model_store_uri(self) -> str:
        return self.model_store_uri or str((self.data_dir / "models").resolve())

    @property
    def resolved_export_uri(self) -> str:
        return self.export_uri or str((self.data_dir / "exports").resolve())

    @property
    def resolved_impressions_export_uri(self) -> str:
        return self.impressions_export_uri or str((self.data_dir / "impressions").resolve())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            name = ENV_NAMES[field.name]
            if name not in env:
                continue
            raw = env[name]
            default = field.default
            try:
                if isinstance(default, bool):
                    values[field.name] = raw.strip().lower() in ("1", "true", "yes", "on")
                elif isinstance(default, int):
                    values[field.name] = int(raw)
                elif isinstance(default, float):
                    values[field.name] = float(raw)
                elif isinstance(default, Path):
                    values[field.name] = Path(raw)
                else:
                    values[field.name] = raw
            except ValueError as err:
                raise SettingsError(f"{name}={raw!r} is not a valid value") from err
        return cls(**values)


def _with_database_tls(url: str, settings: Settings) -> str:
    """`url` with the DATABASE_SSL* settings as libpq query parameters (SQLAlchemy hands them to
    psycopg2.connect), so every engine of every process gets them; other backends unchanged."""
    if not url.startswith(("postgresql", "postgres:")):
        return url
    tls = {
        "sslmode": settings.database_sslmode,
        "sslrootcert": settings.database_sslrootcert,
        "sslcert": settings.database_sslcert,
        "sslkey": settings.database_sslkey,
    }
    present = parse_qs(urlsplit(url).query)  # a parameter the URL itself carries wins
    query = urlencode({key: value for key, value in tls.items() if value and key not in present})
    if not query:
        return url
    return f"{url}{'&' if '?' in url else '?'}{query}"


#: field name -> environment variable. Kept explicit so a rename is a visible decision.
ENV_NAMES: dict[str, str] = {
    "data_dir": "FEEDREC_DATA_DIR",
    "log_level": "LOG_LEVEL",
    "web_bind": "WEB_BIND",
    "web_workers": "WEB_WORKERS",
    "max_request_bytes": "MAX_REQUEST_BYTES",
    "rate_limit_feed": "RATE_LIMIT_FEED",
    "rate_limit_interactions": "RATE_LIMIT_INTERACTIONS",
    "rate_limit_storage_uri": "RATE_LIMIT_STORAGE_URI",
    "database_url": "DATABASE_URL",
    "jwt_secret": "JWT_SECRET",
    "jwt_public_key_file": "JWT_PUBLIC_KEY_FILE",
    "jwt_audience": "JWT_AUDIENCE",
    "jwt_leeway_s": "JWT_LEEWAY_S",
    "kafka_bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS",
    "kafka_topic": "KAFKA_TOPIC",
    "embedded_kafka_bind": "EMBEDDED_KAFKA_BIND",
    "kafka_topic_partitions": "KAFKA_TOPIC_PARTITIONS",
    "kafka_replication_factor": "KAFKA_REPLICATION_FACTOR",
    "kafka_linger_ms": "KAFKA_LINGER_MS",
    "kafka_compression": "KAFKA_COMPRESSION",
    "relay_poll_interval_ms": "RELAY_POLL_INTERVAL_MS",
    "relay_batch_size": "RELAY_BATCH_SIZE",
    "relay_publish_timeout_s": "RELAY_PUBLISH_TIMEOUT_S",
    "relay_lease_ttl_s": "RELAY_LEASE_TTL_S",
    "outbox_retention_s": "OUTBOX_RETENTION_S",
    "segment_write_key": "SEGMENT_WRITE_KEY",
    "segment_host": "SEGMENT_HOST",
    "dd_agent_host": "DD_AGENT_HOST",
    "dd_dogstatsd_port": "DD_DOGSTATSD_PORT",
    "dd_tags": "DD_TAGS",
    "feed_pool_size": "FEED_POOL_SIZE",
    "feed_session_ttl_s": "FEED_SESSION_TTL_S",
    "feed_experiment": "FEED_EXPERIMENT",
    "trending_refresh_s": "TRENDING_REFRESH_S",
    "trending_size": "TRENDING_SIZE",
    "feed_seen_ttl_s": "FEED_SEEN_TTL_S",
    "feed_rotation_s": "FEED_ROTATION_S",
    "feed_exploration": "FEED_EXPLORATION",
    "popularity_refresh_s": "POPULARITY_REFRESH_S",
    "web_stall_threshold_ms": "WEB_STALL_THRESHOLD_MS",
    "export_uri": "EXPORT_URI",
    "impressions_export_uri": "IMPRESSIONS_EXPORT_URI",
    "s3_endpoint_url": "S3_ENDPOINT_URL",
    "export_chunk_rows": "EXPORT_CHUNK_ROWS",
    "export_lag_s": "EXPORT_LAG_S",
    "retrain_at": "RETRAIN_AT",
    "training_window_days": "TRAINING_WINDOW_DAYS",
    "quality_tolerance": "QUALITY_TOLERANCE",
    "train_epochs": "TRAIN_EPOCHS",
    "train_components": "TRAIN_COMPONENTS",
    "train_threads": "TRAIN_THREADS",
    "retrain_search_budget_s": "RETRAIN_SEARCH_BUDGET_S",
    "retrain_fit_budget_s": "RETRAIN_FIT_BUDGET_S",
    "train_seeds": "TRAIN_SEEDS",
    "retrain_train_budget_s": "RETRAIN_TRAIN_BUDGET_S",
    "serve_components": "SERVE_COMPONENTS",
    "retrain_lease_ttl_s": "RETRAIN_LEASE_TTL_S",
    "snowflake_account": "SNOWFLAKE_ACCOUNT",
    "snowflake_user": "SNOWFLAKE_USER",
    "snowflake_password": "SNOWFLAKE_PASSWORD",
    "snowflake_database": "SNOWFLAKE_DATABASE",
    "snowflake_schema": "SNOWFLAKE_SCHEMA",
    "snowflake_warehouse": "SNOWFLAKE_WAREHOUSE",
    "snowflake_host": "SNOWFLAKE_HOST",
    "snowflake_port": "SNOWFLAKE_PORT",
    "snowflake_protocol": "SNOWFLAKE_PROTOCOL",
    "lightfm_bind": "LIGHTFM_BIND",
    "lightfm_target": "LIGHTFM_TARGET",
    "model_store_uri": "MODEL_STORE_URI",
    "lightfm_admin_token": "LIGHTFM_ADMIN_TOKEN",
    "lightfm_max_workers": "LIGHTFM_MAX_WORKERS",
    "lightfm_poll_interval_s": "LIGHTFM_POLL_INTERVAL_S",
    "lightfm_shutdown_grace_s": "LIGHTFM_SHUTDOWN_GRACE_S",
    "lightfm_deadline_ms": "LIGHTFM_DEADLINE_MS",
    "lightfm_breaker_failures": "LIGHTFM_BREAKER_FAILURES",
    "lightfm_breaker_cooldown_s": "LIGHTFM_BREAKER_COOLDOWN_S",
    "lightfm_ann_min_items": "LIGHTFM_ANN_MIN_ITEMS",
    "lightfm_ann_nprobe": "LIGHTFM_ANN_NPROBE",
    "lightfm_tls_cert_file": "LIGHTFM_TLS_CERT_FILE",
    "lightfm_tls_key_file": "LIGHTFM_TLS_KEY_FILE",
    "lightfm_tls_client_ca_file": "LIGHTFM_TLS_CLIENT_CA_FILE",
    "lightfm_tls_ca_file": "LIGHTFM_TLS_CA_FILE",
    "lightfm_tls_client_cert_file": "LIGHTFM_TLS_CLIENT_CERT_FILE",
    "lightfm_tls_client_key_file": "LIGHTFM_TLS_CLIENT_KEY_FILE",
    "lightfm_tls_server_name": "LIGHTFM_TLS_SERVER_NAME",
    "kafka_security_protocol": "KAFKA_SECURITY_PROTOCOL",
    "kafka_sasl_mechanism": "KAFKA_SASL_MECHANISM",
    "kafka_sasl_username": "KAFKA_SASL_USERNAME",
    "kafka_sasl_password": "KAFKA_SASL_PASSWORD",
    "kafka_sasl_password_file": "KAFKA_SASL_PASSWORD_FILE",
    "kafka_msk_region": "KAFKA_MSK_REGION",
    "kafka_msk_role_arn": "KAFKA_MSK_ROLE_ARN",
    "kafka_ssl_cafile": "KAFKA_SSL_CAFILE",
    "kafka_ssl_certfile": "KAFKA_SSL_CERTFILE",
    "kafka_ssl_keyfile": "KAFKA_SSL_KEYFILE",
    "kafka_ssl_check_hostname": "KAFKA_SSL_CHECK_HOSTNAME",
    "database_sslmode": "DATABASE_SSLMODE",
    "database_sslrootcert": "DATABASE_SSLROOTCERT",
    "database_sslcert": "DATABASE_SSLCERT",
    "database_sslkey": "DATABASE_SSLKEY",
    "snowflake_private_key_path": "SNOWFLAKE_PRIVATE_KEY_PATH",
    "snowflake_private_key_passphrase": "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE",
    "snowflake_private_key_passphrase_file": "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE",
    "jwt_max_lifetime_s": "JWT_MAX_LIFETIME_S",
    "jwt_issuer": "JWT_ISSUER",
}
