"""The MSK IAM token signed with an assumed role (KAFKA_MSK_ROLE_ARN, e.g. the story's
`feed-rec-producer`), the role assumed at a local moto STS: no network beyond 127.0.0.1.

What is not tested here: that Amazon MSK accepts the token (no local server speaks MSK's IAM
SASL); see docs/security.md.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from app.composition.common import kafka_security
from app.settings import Settings
from tests.servers import MOTO_CREDENTIALS, STARTED_SERVERS, MotoS3Server

pytestmark = pytest.mark.integration

ROLE = "arn:aws:iam::123456789012:role/feed-rec-producer"


@pytest.fixture
def moto_sts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = MotoS3Server(tmp_path)  # moto's server answers every service, STS included
    server.start()
    STARTED_SERVERS["sts"] = f"moto_server (STS) at {server.endpoint}"
    for name, value in MOTO_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_REGION")  # the cluster's region must come from the setting
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", server.endpoint)
    try:
        yield server.endpoint
    finally:
        server.stop()


def test_the_token_is_signed_with_the_assumed_roles_temporary_credentials(
    moto_sts: str,
) -> None:
    security = kafka_security(
        Settings.from_env(
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "OAUTHBEARER",
                "KAFKA_MSK_REGION": "eu-central-1",
                "KAFKA_MSK_ROLE_ARN": ROLE,
            }
        )
    )

    token = security.client_config()["sasl_oauth_token_provider"].token()

    url = urlsplit(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    query = {key: values[0] for key, values in parse_qs(url.query).items()}
    access_key, _, region, service, _ = query["X-Amz-Credential"].split("/")
    assert url.hostname == "kafka.eu-central-1.amazonaws.com"
    assert (region, service) == ("eu-central-1", "kafka-cluster")
    assert access_key.startswith("ASIA")  # temporary credentials from STS, not the caller's
    assert access_key != MOTO_CREDENTIALS["AWS_ACCESS_KEY_ID"]
    assert query["X-Amz-Security-Token"]
