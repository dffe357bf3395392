"""How every Kafka client of the product authenticates and encrypts: the kafka-python keyword
arguments for `security.protocol` PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, with SASL PLAIN,
SCRAM-SHA-256/512 or OAUTHBEARER (an AWS MSK IAM token), and the TLS context the health probe
wraps its socket in.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
#: A token this close to its expiry is replaced before it is handed out, in seconds.
TOKEN_REFRESH_MARGIN_S = 60.0


@dataclass(frozen=True)
class KafkaSecurity:
    """`protocol` one of PROTOCOLS; `sasl_mechanism` one of MECHANISMS for the SASL_ ones.
    `username`/`password` for PLAIN and SCRAM; `msk_region` (and optionally `msk_role_arn`,
    a role to assume) for OAUTHBEARER. `ssl_cafile` empty: the system's trusted CAs;
    `ssl_certfile`/`ssl_keyfile`: a client certificate (mutual TLS)."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    username: str = ""
    password: str = ""
    msk_region: str = ""
    msk_role_arn: str = ""
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    ssl_check_hostname: bool = True

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"KAFKA_SECURITY_PROTOCOL {self.protocol!r}: one of {PROTOCOLS}")
        if self.uses_sasl:
            if self.sasl_mechanism not in MECHANISMS:
                raise ValueError(
                    f"KAFKA_SASL_MECHANISM {self.sasl_mechanism!r}: one of {MECHANISMS} "
                    f"with {self.protocol}"
                )
            if self.sasl_mechanism == "OAUTHBEARER":
                if not self.msk_region:
                    raise ValueError("OAUTHBEARER needs KAFKA_MSK_REGION (the cluster's region)")
            elif not (self.username and self.password):
                raise ValueError(
                    f"{self.sasl_mechanism} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
                )
        if bool(self.ssl_certfile) != bool(self.ssl_keyfile):
            raise ValueError("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    def client_config(self) -> dict[str, Any]:
        """kafka-python keyword arguments (the same for producer, consumer and admin)."""
        config: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_tls:
            config["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            config["sasl_mechanism"] = self.sasl_mechanism
            if self.sasl_mechanism == "OAUTHBEARER":
                config["sasl_oauth_token_provider"] = kafka_token_provider(
                    MskIamToken(self.msk_region, self.msk_role_arn)
                )
            else:
                config["sasl_plain_username"] = self.username
                config["sasl_plain_password"] = self.password
        return config

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that verifies the broker's certificate (and its name unless
        `ssl_check_hostname` is off); one context for every client, so a bad file fails at
        start-up, not at the first connection."""
        context = ssl.create_default_context(cafile=self.ssl_cafile or None)
        context.check_hostname = self.ssl_check_hostname
        if self.ssl_certfile:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        return context

    def __repr__(self) -> str:  # never print the password
        return f"KafkaSecurity({self.protocol}, {self.sasl_mechanism or 'no SASL'})"


def kafka_token_provider(source: MskIamToken) -> Any:
    """`source` as the `AbstractTokenProvider` kafka-python requires (kafka is imported here, so
    that importing this module, as the web's health check does, does not load it)."""
    from kafka.net.sasl.oauth import AbstractTokenProvider

    class TokenProvider(AbstractTokenProvider):  # type: ignore[misc]  # untyped base
        def token(self) -> str:
            return source.token()

    return TokenProvider()


class MskIamToken:
    """OAUTHBEARER tokens for Amazon MSK's IAM access control: a SigV4-presigned
    `kafka-cluster:Connect` URL from `aws-msk-iam-sasl-signer-python`, signed with the default
    AWS credential chain (the instance's or task's role) or, with `role_arn`, with a role it
    assumes first (e.g. `feed-rec-producer`). A token is reused until a minute before expiry:
    kafka-python asks for one on every connection."""

    def __init__(
        self, region: str, role_arn: str = "", clock: Callable[[], float] = time.time
    ) -> None:
        self._region = region
        self._role_arn = role_arn
        self._clock = clock  # epoch seconds
        self._lock = threading.Lock()
        self._token = ""
        self._expires_at = 0.0  # epoch seconds

    def token(self) -> str:
        with self._lock:
            if self._clock() >= self._expires_at - TOKEN_REFRESH_MARGIN_S:
                token, expiry_ms = self._sign()
                self._token, self._expires_at = str(token), int(expiry_ms) / 1000
            return self._token

    def _sign(self) -> tuple[str, int]:
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

        if not self._role_arn:
            return MSKAuthTokenProvider.generate_auth_token(self._region)  # type: ignore[no-any-return]
        # The signer's own role path asks STS without a region (fails where none is configured,
        # and uses the global endpoint): assume the role at the cluster region's STS instead.
        import boto3
        from botocore.credentials import CredentialProvider, Credentials

        assumed = boto3.client("sts", region_name=self._region).assume_role(
            RoleArn=self._role_arn, RoleSessionName="feedrec"
        )["Credentials"]
        credentials = Credentials(
            assumed["AccessKeyId"], assumed["SecretAccessKey"], assumed["SessionToken"]
        )

        class AssumedRole(CredentialProvider):  # type: ignore[misc]  # untyped base
            METHOD = "assume-role"

            def load(self) -> Credentials:
                return credentials

        return MSKAuthTokenProvider.generate_auth_token_from_credentials_provider(  # type: ignore[no-any-return]
            self._region, AssumedRole()
        )
