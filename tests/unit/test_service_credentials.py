"""Credentials for managed services, as the settings turn them into client arguments: Kafka's
security protocol and SASL, the MSK IAM token, PostgreSQL's TLS parameters and Snowflake's
key pair. (The wires themselves are tested in tests/integration.)"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from kafka.net.sasl.oauth import AbstractTokenProvider

from adapters.kafka.security import KafkaSecurity, MskIamToken
from app.composition.common import kafka_security
from app.composition.worker import snowflake_connect_kwargs
from app.settings import Settings, SettingsError

pytestmark = pytest.mark.unit


def _kafka(**env: str) -> KafkaSecurity:
    return kafka_security(Settings.from_env(env))


def test_plaintext_is_the_default_and_adds_nothing_but_the_protocol() -> None:
    assert _kafka().client_config() == {"security_protocol": "PLAINTEXT"}


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "scram-sha-512"])
def test_sasl_ssl_with_a_password_mechanism_passes_the_user_and_a_verifying_context(
    mechanism: str, tmp_path: Path
) -> None:
    secret = tmp_path / "kafka-password"
    secret.write_text("s3cret\n")

    config = _kafka(
        KAFKA_SECURITY_PROTOCOL="sasl_ssl",
        KAFKA_SASL_MECHANISM=mechanism,
        KAFKA_SASL_USERNAME="feed-rec-producer",
        KAFKA_SASL_PASSWORD_FILE=str(secret),
    ).client_config()

    assert config["security_protocol"] == "SASL_SSL"
    assert config["sasl_mechanism"] == mechanism.upper()
    assert (config["sasl_plain_username"], config["sasl_plain_password"]) == (
        "feed-rec-producer",
        "s3cret",
    )
    assert config["ssl_context"].check_hostname


def test_the_password_setting_wins_over_its_file_and_is_never_printed(tmp_path: Path) -> None:
    secret = tmp_path / "kafka-password"
    secret.write_text("from-file")

    security = _kafka(
        KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        KAFKA_SASL_USERNAME="u",
        KAFKA_SASL_PASSWORD="from-env",
        KAFKA_SASL_PASSWORD_FILE=str(secret),
    )

    assert security.password == "from-env"
    assert "from-env" not in repr(security) and "ssl_context" not in security.client_config()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_MECHANISM"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256"},
            "KAFKA_SASL_PASSWORD",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "OAUTHBEARER"},
            "KAFKA_MSK_REGION",
        ),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERTFILE": "c.pem"}, "KAFKA_SSL_KEYFILE"),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "PLAIN",
                "KAFKA_SASL_USERNAME": "u",
                "KAFKA_SASL_PASSWORD_FILE": "/nonexistent/kafka-password",
            },
            "KAFKA_SASL_PASSWORD_FILE",
        ),
    ],
)
def test_incomplete_kafka_credentials_are_a_settings_error_naming_the_setting(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(SettingsError, match=named):
        _kafka(**env)


def test_a_ca_file_that_does_not_exist_fails_when_the_clients_are_built() -> None:
    security = _kafka(KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CAFILE="/nonexistent/ca.pem")

    with pytest.raises(FileNotFoundError):
        security.client_config()


def _signed_url(token: str) -> str:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()


def test_the_msk_iam_token_is_a_connect_url_signed_for_the_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # static credentials: the signer signs locally, nothing leaves the machine
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFEEDRECTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    security = _kafka(
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM="OAUTHBEARER",
        KAFKA_MSK_REGION="eu-west-1",
    )
    provider = security.client_config()["sasl_oauth_token_provider"]

    token = provider.token()

    url = urlsplit(_signed_url(token))
    query = {key: values[0] for key, values in parse_qs(url.query).items()}
    assert isinstance(provider, AbstractTokenProvider)
    assert url.scheme == "https" and url.hostname == "kafka.eu-west-1.amazonaws.com"
    assert query["Action"] == "kafka-cluster:Connect"
    assert query["X-Amz-Credential"].split("/")[0] == "AKIDFEEDRECTEST"
    assert query["X-Amz-Credential"].split("/")[2:4] == ["eu-west-1", "kafka-cluster"]
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256" and len(query["X-Amz-Signature"]) == 64
    assert provider.token() == token  # reused until close to expiry, not signed per connection


def test_an_msk_token_close_to_expiry_is_signed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    import aws_msk_iam_sasl_signer

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFEEDRECTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    signer = aws_msk_iam_sasl_signer.MSKAuthTokenProvider
    signed: list[str] = []
    real_sign = signer.generate_auth_token

    def counting_sign(region: str) -> tuple[str, int]:
        signed.append(region)
        return real_sign(region)  # type: ignore[no-any-return]

    monkeypatch.setattr(signer, "generate_auth_token", counting_sign)
    now = [time.time()]
    provider = MskIamToken("us-east-1", clock=lambda: now[0])

    provider.token()
    now[0] += 800  # the signer's tokens last 900 s: still good for more than a minute
    provider.token()
    assert signed == ["us-east-1"]
    now[0] += 50  # within the last minute: signed again
    provider.token()

    assert signed == ["us-east-1", "us-east-1"]


def test_database_tls_settings_reach_the_postgresql_url_and_leave_sqlite_alone(
    tmp_path: Path,
) -> None:
    tls = {
        "DATABASE_SSLMODE": "verify-full",
        "DATABASE_SSLROOTCERT": "/etc/feedrec/rds-ca.pem",
    }
    postgres = Settings.from_env({"DATABASE_URL": "postgresql+psycopg2://u:p@db/feed", **tls})
    carried = Settings.from_env(
        {"DATABASE_URL": "postgresql://u@db/feed?sslmode=require&application_name=x", **tls}
    )
    sqlite = Settings.from_env({"FEEDREC_DATA_DIR": str(tmp_path), **tls})

    query = parse_qs(urlsplit(postgres.resolved_database_url).query)
    assert query == {"sslmode": ["verify-full"], "sslrootcert": ["/etc/feedrec/rds-ca.pem"]}
    assert parse_qs(urlsplit(carried.resolved_database_url).query)["sslmode"] == ["require"]
    assert "ssl" not in sqlite.resolved_database_url


def _write_key(path: Path, passphrase: bytes | None) -> rsa.RSAPrivateKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    return key


def _snowflake(**env: str) -> dict[str, object]:
    return snowflake_connect_kwargs(
        Settings.from_env({"SNOWFLAKE_ACCOUNT": "acme", "SNOWFLAKE_USER": "FEEDREC_SVC", **env})
    )


def test_a_snowflake_key_pair_replaces_the_password(tmp_path: Path) -> None:
    key_file = tmp_path / "rsa_key.p8"
    key = _write_key(key_file, b"open sesame")
    (tmp_path / "passphrase").write_text("open sesame\n")

    kwargs = _snowflake(
        SNOWFLAKE_PASSWORD="retired",
        SNOWFLAKE_PRIVATE_KEY_PATH=str(key_file),
        SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE=str(tmp_path / "passphrase"),
    )

    assert "password" not in kwargs
    assert kwargs["authenticator"] == "SNOWFLAKE_JWT"
    loaded = serialization.load_der_private_key(kwargs["private_key"], None)  # type: ignore[arg-type]
    assert loaded.public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]


def test_without_a_key_the_password_sign_in_stays() -> None:
    kwargs = _snowflake(SNOWFLAKE_PASSWORD="pw")

    assert kwargs["password"] == "pw" and "private_key" not in kwargs


@pytest.mark.parametrize(
    ("content", "passphrase", "reason"),
    [
        (None, "", "cannot be read"),
        (b"-----BEGIN NOT A KEY-----\n", "", "is not a PEM private key"),
        ("encrypted", "", "is not a PEM private key"),  # passphrase missing
        ("encrypted", "wrong", "is not a PEM private key"),
    ],
)
def test_a_bad_snowflake_key_is_a_clear_settings_error(
    tmp_path: Path, content: bytes | str | None, passphrase: str, reason: str
) -> None:
    key_file = tmp_path / "rsa_key.p8"
    if content == "encrypted":
        _write_key(key_file, b"right")
    elif isinstance(content, bytes):
        key_file.write_bytes(content)

    with pytest.raises(SettingsError, match=f"SNOWFLAKE_PRIVATE_KEY_PATH=.*{reason}"):
        _snowflake(
            SNOWFLAKE_PRIVATE_KEY_PATH=str(key_file),
            SNOWFLAKE_PRIVATE_KEY_PASSPHRASE=passphrase,
        )
