"""Parts every process builds the same way from `Settings`. Free of Flask on purpose: the
relay, worker and model service use them too."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from adapters.dogstatsd_metrics import DogStatsdMetrics
from adapters.jwt_tokens import JwtTokens
from adapters.kafka.security import KafkaSecurity
from adapters.lightfm.channel import ClientTls, ServerTls
from adapters.model_store import model_store_from_uri
from adapters.null_observability import NullAnalytics, NullMetrics
from adapters.segment_analytics import SegmentAnalytics
from app.secrets import jwt_secret, public_key, secret_or_file
from app.settings import Settings, SettingsError
from domain.cursor import CursorCodec
from ports.model_store import ModelStore
from ports.observability import Analytics, Metrics


def token_codec(settings: Settings) -> JwtTokens:
    return JwtTokens(
        secret=jwt_secret(settings),
        audience=settings.jwt_audience,
        leeway_s=settings.jwt_leeway_s,
        public_key_pem=public_key(settings),
        max_lifetime_s=settings.jwt_max_lifetime_s,
        issuer=settings.jwt_issuer,
    )


def cursor_codec(settings: Settings) -> CursorCodec:
    # A key of its own, derived from the JWT secret: a cursor can never pass as a token.
    key = hmac.new(jwt_secret(settings).encode(), b"feedrec/cursor/v1", hashlib.sha256).digest()
    return CursorCodec(key, timedelta(seconds=settings.feed_session_ttl_s))


def metrics_from(settings: Settings) -> Metrics:
    if not settings.dd_agent_host:
        return NullMetrics()
    tags = [tag.strip() for tag in settings.dd_tags.split(",") if tag.strip()]
    return DogStatsdMetrics(settings.dd_agent_host, settings.dd_dogstatsd_port, constant_tags=tags)


def analytics_from(settings: Settings) -> Analytics:
    if not settings.segment_write_key:
        return NullAnalytics()
    return SegmentAnalytics(settings.segment_write_key, settings.segment_host)


def model_store_from(settings: Settings) -> ModelStore:
    """The model store the worker publishes to and the model service loads from."""
    return model_store_from_uri(settings.resolved_model_store_uri, settings.s3_endpoint_url or None)


def model_client_tls(settings: Settings) -> ClientTls | None:
    """TLS of the web service's and worker's channel to the model service; None: plaintext."""
    if not settings.lightfm_tls_ca_file:
        return None
    return ClientTls(
        settings.lightfm_tls_ca_file,
        settings.lightfm_tls_client_cert_file,
        settings.lightfm_tls_client_key_file,
        settings.lightfm_tls_server_name,
    )


def model_server_tls(settings: Settings) -> ServerTls | None:
    """TLS the model service listens with; None: plaintext."""
    if not settings.lightfm_tls_cert_file:
        return None
    return ServerTls(
        settings.lightfm_tls_cert_file,
        settings.lightfm_tls_key_file,
        settings.lightfm_tls_client_ca_file,
    )


def kafka_security(settings: Settings) -> KafkaSecurity:
    """How every Kafka client (relay producer, topic provisioning, health probe) connects."""
    try:
        return KafkaSecurity(
            protocol=settings.kafka_security_protocol.upper(),
            sasl_mechanism=settings.kafka_sasl_mechanism.upper(),
            username=settings.kafka_sasl_username,
            password=secret_or_file(
                settings.kafka_sasl_password,
                settings.kafka_sasl_password_file,
                "KAFKA_SASL_PASSWORD",
            ),
            msk_region=settings.kafka_msk_region,
            msk_role_arn=settings.kafka_msk_role_arn,
            ssl_cafile=settings.kafka_ssl_cafile,
            ssl_certfile=settings.kafka_ssl_certfile,
            ssl_keyfile=settings.kafka_ssl_keyfile,
            ssl_check_hostname=settings.kafka_ssl_check_hostname,
        )
    except ValueError as err:
        raise SettingsError(str(err)) from err
