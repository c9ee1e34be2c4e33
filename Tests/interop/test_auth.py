"""API-key auth: `authorization: Bearer KEY` on every call, health included, when auth is on; off by
default on loopback unless `--auth on`."""

from __future__ import annotations

import grpc
import pytest
from grpc.health.v1 import health_pb2, health_pb2_grpc
from grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc
from prism.v1 import prism_pb2

from conftest import API_KEY, OTHER_API_KEY
from harness import RPC_TIMEOUT_S, assert_status, rpc_error

StatusCode = grpc.StatusCode


@pytest.fixture(scope="module")
def auth_server(servers, transport):
    """--interop --api-key secret --api-key second-key --auth on"""
    return servers.get("auth", transport)


@pytest.fixture
def auth_channel(auth_server):
    with auth_server.channel() as ch:
        yield ch


def bearer(key: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}")]


@pytest.mark.parametrize("metadata, case", [
    ([], "no authorization header"),
    (bearer("wrong"), "a wrong key"),
    (bearer(API_KEY + "x"), "the key with a byte more"),
    (bearer(API_KEY[:-1]), "the key with a byte less"),
    ([("authorization", API_KEY)], "the key without 'Bearer '"),
    ([("authorization", "Basic " + API_KEY)], "another scheme"),
])
def test_unauthenticated_without_a_valid_key(auth_channel, metadata, case):
    stub = test_pb2_grpc.TestServiceStub(auth_channel)
    err = rpc_error(lambda: stub.EmptyCall(empty_pb2.Empty(), metadata=metadata, timeout=RPC_TIMEOUT_S),
                    f"EmptyCall with {case}")
    assert_status(err, StatusCode.UNAUTHENTICATED, f"EmptyCall with {case}")


@pytest.mark.parametrize("key", [API_KEY, OTHER_API_KEY])
def test_each_configured_key_works(auth_channel, key):
    stub = test_pb2_grpc.TestServiceStub(auth_channel)
    assert stub.EmptyCall(empty_pb2.Empty(), metadata=bearer(key), timeout=RPC_TIMEOUT_S) == empty_pb2.Empty()
    response = stub.UnaryCall(messages_pb2.SimpleRequest(response_size=100), metadata=bearer(key),
                              timeout=RPC_TIMEOUT_S)
    assert len(response.payload.body) == 100


def test_health_is_behind_auth(auth_channel):
    health = health_pb2_grpc.HealthStub(auth_channel)
    err = rpc_error(lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=RPC_TIMEOUT_S),
                    "Health/Check without a key")
    assert_status(err, StatusCode.UNAUTHENTICATED, "Health/Check without a key")
    response = health.Check(health_pb2.HealthCheckRequest(), metadata=bearer(API_KEY), timeout=RPC_TIMEOUT_S)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_streaming_calls_are_behind_auth(auth_channel):
    stub = test_pb2_grpc.TestServiceStub(auth_channel)
    request = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=10)])
    err = rpc_error(lambda: stub.FullDuplexCall(iter([request]), timeout=RPC_TIMEOUT_S), "FullDuplexCall without a key")
    assert_status(err, StatusCode.UNAUTHENTICATED, "FullDuplexCall without a key")
    responses = list(stub.FullDuplexCall(iter([request]), metadata=bearer(API_KEY), timeout=RPC_TIMEOUT_S))
    assert [len(r.payload.body) for r in responses] == [10]


def test_prism_service_is_behind_auth(auth_channel):
    list_providers = auth_channel.unary_unary(
        "/prism.v1.Prism/ListProviders", request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=prism_pb2.ListProvidersResponse.FromString)
    err = rpc_error(lambda: list_providers(prism_pb2.ListProvidersRequest(), timeout=RPC_TIMEOUT_S),
                    "ListProviders without a key")
    assert_status(err, StatusCode.UNAUTHENTICATED, "ListProviders without a key")


def test_standard_access_token_credentials(servers):
    """The way a grpcio user passes a bearer token (grpcio sends call credentials over TLS only)."""
    auth_server = servers.get("auth", "tls")
    credentials = grpc.composite_channel_credentials(
        grpc.ssl_channel_credentials(root_certificates=auth_server.ca_cert.read_bytes()),
        grpc.access_token_call_credentials(API_KEY))
    with auth_server.channel(credentials=credentials) as channel:
        stub = test_pb2_grpc.TestServiceStub(channel)
        assert stub.EmptyCall(empty_pb2.Empty(), timeout=RPC_TIMEOUT_S) == empty_pb2.Empty()


@pytest.mark.parametrize("config", ["auth-auto", "auth-off"])
def test_auth_is_off_on_loopback_unless_turned_on(servers, config):
    server = servers.get(config, "h2c")
    with server.channel() as channel:
        stub = test_pb2_grpc.TestServiceStub(channel)
        assert stub.EmptyCall(empty_pb2.Empty(), timeout=RPC_TIMEOUT_S) == empty_pb2.Empty()
