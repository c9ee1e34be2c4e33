"""TLS specifics: ALPN h2, certificate checks both ways, and client-certificate verification with
--tls-client-ca."""

from __future__ import annotations

import socket
import ssl

import grpc
import pytest
from grpc.testing import empty_pb2, test_pb2_grpc

from harness import RPC_TIMEOUT_S

StatusCode = grpc.StatusCode


@pytest.fixture(scope="module")
def tls_server(servers):
    return servers.get("interop", "tls")


@pytest.fixture(scope="module")
def mtls_server(servers):
    """--interop with --tls-client-ca: clients must present a certificate signed by the test CA."""
    return servers.get("interop", "mtls")


def empty_call(channel, timeout=RPC_TIMEOUT_S):
    return test_pb2_grpc.TestServiceStub(channel).EmptyCall(empty_pb2.Empty(), timeout=timeout)


def test_alpn_selects_h2(tls_server, certs):
    ctx = ssl.create_default_context(cafile=str(certs.ca_cert))
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection((tls_server.host, tls_server.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.selected_alpn_protocol() == "h2"
            assert tls.version() in ("TLSv1.2", "TLSv1.3"), tls.version()


def test_certificate_names_localhost_and_127_0_0_1(tls_server, certs):
    ctx = ssl.create_default_context(cafile=str(certs.ca_cert))
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection((tls_server.host, tls_server.port), timeout=10) as raw:
        # Hostname checking against the IP address: the server presents the configured certificate.
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.getpeercert()["subject"] == ((("commonName", "localhost"),),)


def test_client_that_does_not_trust_the_ca_is_refused(tls_server, tmp_path):
    # Trusting only an unrelated CA: the handshake fails on the client side; no call gets through.
    other = tmp_path / "other"
    from harness import Certs

    other_ca = Certs(other).generate().ca_cert.read_bytes()
    credentials = grpc.ssl_channel_credentials(root_certificates=other_ca)
    with tls_server.channel(credentials=credentials) as channel:
        with pytest.raises(grpc.RpcError) as info:
            empty_call(channel, timeout=5)
        assert info.value.code() == StatusCode.UNAVAILABLE, info.value


def test_plaintext_client_on_the_tls_port_fails_cleanly(tls_server):
    with grpc.insecure_channel(tls_server.target, options=[("grpc.enable_http_proxy", 0)]) as channel:
        with pytest.raises(grpc.RpcError) as info:
            empty_call(channel, timeout=5)
        assert info.value.code() in (StatusCode.UNAVAILABLE, StatusCode.DEADLINE_EXCEEDED), info.value


def test_mtls_client_with_a_certificate_works(mtls_server, certs):
    credentials = grpc.ssl_channel_credentials(root_certificates=certs.ca_cert.read_bytes(),
                                               private_key=certs.client_key.read_bytes(),
                                               certificate_chain=certs.client_cert.read_bytes())
    with mtls_server.channel(credentials=credentials) as channel:
        assert empty_call(channel) == empty_pb2.Empty()


def test_mtls_client_without_a_certificate_is_refused(mtls_server):
    with mtls_server.channel() as channel:
        with pytest.raises(grpc.RpcError) as info:
            empty_call(channel, timeout=5)
        assert info.value.code() == StatusCode.UNAVAILABLE, info.value
