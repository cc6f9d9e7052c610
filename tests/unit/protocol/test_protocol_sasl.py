"""SASL/PLAIN on a SASL_PLAINTEXT listener: real clients, raw frames, and the legacy v0 flow."""

from __future__ import annotations

import asyncio
import logging
import struct

import kafka.errors
import pytest
from aiokafka import AIOKafkaClient
from confluent_kafka.admin import AdminClient
from kafka import KafkaAdminClient
from kafka.net.compat import KafkaNetClient
from kio.schema.api_versions import v3 as api_versions_v3
from kio.schema.metadata import v12 as metadata_v12
from kio.schema.sasl_authenticate import v0 as sasl_authenticate_v0
from kio.schema.sasl_authenticate import v2 as sasl_authenticate_v2
from kio.schema.sasl_handshake import v0 as sasl_handshake_v0
from kio.schema.sasl_handshake import v1 as sasl_handshake_v1
from protocol_test_support import CLUSTER_ID, NODE_ID, WireClient

from brokers.protocol.errors import ErrorCode

SASL = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN"}


def metadata_request():
    return metadata_v12.request.MetadataRequest(
        topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=False
    )


def handshake(client: WireClient, mechanism: str = "PLAIN"):
    return client.call(sasl_handshake_v1.request.SaslHandshakeRequest(mechanism=mechanism))


def authenticate(client: WireClient, message: bytes):
    return client.call(sasl_authenticate_v2.request.SaslAuthenticateRequest(auth_bytes=message))


def test_kafka_python_with_good_credentials_gets_through(sasl_server, services) -> None:
    admin = KafkaAdminClient(
        bootstrap_servers=sasl_server.bootstrap,
        request_timeout_ms=5000,
        sasl_plain_username="alice",
        sasl_plain_password="alice-secret",
        **SASL,
    )
    try:
        assert admin.describe_cluster()["cluster_id"] == CLUSTER_ID
    finally:
        admin.close()
    assert "alice" in services.authentications


def test_kafka_python_with_bad_credentials_gets_sasl_authentication_failed(
    sasl_server, caplog
) -> None:
    client = KafkaNetClient(
        bootstrap_servers=sasl_server.bootstrap,
        request_timeout_ms=2000,
        sasl_plain_username="alice",
        sasl_plain_password="wrong",
        **SASL,
    )
    with caplog.at_level(logging.WARNING, logger="kafka"):
        try:
            with pytest.raises(kafka.errors.KafkaError):
                client.check_version(timeout_ms=1500)
        finally:
            client.close()
    # kafka-python reports the broker's error (code 58 and its message) on each attempt.
    failures = [
        r.getMessage() for r in caplog.records if "SaslAuthenticationFailedError" in r.getMessage()
    ]
    assert failures, [r.getMessage() for r in caplog.records]
    assert all("[Error 58]" in m and "Invalid username or password" in m for m in failures)
    assert not any("socket disconnected" in r.getMessage() for r in caplog.records)


def test_aiokafka_authenticates_with_plain(sasl_server) -> None:
    async def bootstrap() -> set[int]:
        client = AIOKafkaClient(
            bootstrap_servers=sasl_server.bootstrap,
            request_timeout_ms=5000,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="PLAIN",
            sasl_plain_username="alice",
            sasl_plain_password="alice-secret",
        )
        try:
            await client.bootstrap()
            return {b.nodeId for b in client.cluster.brokers()}
        finally:
            await client.close()

    assert asyncio.run(bootstrap()) == {NODE_ID}


def test_confluent_kafka_authenticates_with_plain(sasl_server) -> None:
    admin = AdminClient(
        {
            "bootstrap.servers": sasl_server.bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN",
            "sasl.username": "alice",
            "sasl.password": "alice-secret",
            "socket.timeout.ms": 5000,
        }
    )
    assert admin.list_topics(timeout=5).cluster_id == CLUSTER_ID


def test_good_credentials_unlock_other_apis(sasl_server) -> None:
    with WireClient(sasl_server.address) as client:
        response = handshake(client)
        assert response.error_code == ErrorCode.none
        assert response.mechanisms == ("PLAIN",)
        response = authenticate(client, b"\x00alice\x00alice-secret")
        assert response.error_code == ErrorCode.none
        assert client.call(metadata_request()).cluster_id == CLUSTER_ID


def test_authzid_equal_to_username_is_accepted(sasl_server) -> None:
    with WireClient(sasl_server.address) as client:
        handshake(client)
        assert authenticate(client, b"alice\x00alice\x00alice-secret").error_code == 0


@pytest.mark.parametrize(
    "message",
    [
        b"\x00alice\x00wrong",
        b"\x00nobody\x00alice-secret",
        b"bob\x00alice\x00alice-secret",  # authorization id other than the username
        b"alice-secret",
        b"\x00\x00",
        b"\x00al\xffice\x00x",
    ],
)
def test_bad_plain_messages_fail_and_close_the_connection(sasl_server, message: bytes) -> None:
    with WireClient(sasl_server.address) as client:
        handshake(client)
        response = authenticate(client, message)
        assert response.error_code == ErrorCode.sasl_authentication_failed
        assert response.error_message.startswith(("Authentication failed", "Invalid SASL"))
        assert client.is_closed_by_server()


def test_requests_before_authentication_close_the_connection(sasl_server) -> None:
    with WireClient(sasl_server.address) as client:
        request = api_versions_v3.request.ApiVersionsRequest(
            client_software_name="t", client_software_version="1"
        )
        assert client.call(request).error_code == ErrorCode.none  # allowed before auth
        client.send(metadata_request())
        assert client.is_closed_by_server()


def test_authenticate_before_handshake_is_an_illegal_sasl_state(sasl_server) -> None:
    with WireClient(sasl_server.address) as client:
        response = authenticate(client, b"\x00alice\x00alice-secret")
        assert response.error_code == ErrorCode.illegal_sasl_state
        assert client.is_closed_by_server()


def test_unsupported_mechanism_lists_plain(sasl_server) -> None:
    with WireClient(sasl_server.address) as client:
        response = handshake(client, "SCRAM-SHA-512")
        assert response.error_code == ErrorCode.unsupported_sasl_mechanism
        assert response.mechanisms == ("PLAIN",)


def test_handshake_on_a_plaintext_listener_is_an_illegal_sasl_state(server) -> None:
    with WireClient(server.address) as client:
        assert handshake(client).error_code == ErrorCode.illegal_sasl_state


def test_sasl_authenticate_v0_works_too(sasl_server) -> None:
    with WireClient(sasl_server.address) as client:
        handshake(client)
        request = sasl_authenticate_v0.request.SaslAuthenticateRequest(
            auth_bytes=b"\x00alice\x00alice-secret"
        )
        assert client.call(request).error_code == ErrorCode.none


def test_legacy_handshake_v0_then_raw_token(sasl_server) -> None:
    with WireClient(sasl_server.address) as client:
        response = client.call(sasl_handshake_v0.request.SaslHandshakeRequest(mechanism="PLAIN"))
        assert response.error_code == ErrorCode.none
        token = b"\x00alice\x00alice-secret"
        client.send_raw(struct.pack(">i", len(token)) + token)  # no Kafka header: raw SASL
        assert client.receive_frame() == b""  # PLAIN's empty server token
        assert client.call(metadata_request()).cluster_id == CLUSTER_ID


def test_legacy_raw_token_with_bad_credentials_closes_the_connection(sasl_server) -> None:
    with WireClient(sasl_server.address) as client:
        client.call(sasl_handshake_v0.request.SaslHandshakeRequest(mechanism="PLAIN"))
        token = b"\x00alice\x00wrong"
        client.send_raw(struct.pack(">i", len(token)) + token)
        assert client.is_closed_by_server()
