"""Media.uri: the server fetches http(s) media itself, decodes data: URIs, and refuses what its SSRF
guard forbids. Origins are Python http.servers (origin.py) started here on ephemeral ports: one on
127.0.0.2, which the main server's config allows, and one on 127.0.0.1, which it does not (only the
`patient` server of the https, deadline and cancellation tests allows it); each logs its requests, so
a test can prove a refused fetch never reached it. The model is local/mediainfo, the example plugin,
which answers with the facts of the media it got."""

from __future__ import annotations

import base64
import json
import socket
import urllib.parse

import grpc
import pytest
from prism.v1 import prism_pb2, prism_pb2_grpc

from harness import RPC_TIMEOUT_S, ServerStartError, rpc_error
from origin import IMAGE, MAX_BYTES, Origin
from tls_front import TLSFront

StatusCode = grpc.StatusCode

FETCH_TIMEOUT_S = 3     # media.fetch.timeout_seconds of the configured server


@pytest.fixture(scope="module")
def allowed():
    origin = Origin("127.0.0.2")
    yield origin
    origin.close()


@pytest.fixture(scope="module")
def private():
    origin = Origin("127.0.0.1")
    yield origin
    origin.close()


@pytest.fixture(scope="module")
def server(servers, tmp_path_factory):
    """A server whose config allows 127.0.0.2 (not 127.0.0.1) with small limits."""
    config = tmp_path_factory.mktemp("media-uri") / "prism.json"
    config.write_text(json.dumps({"media": {"fetch": {
        "allow_hosts": ["127.0.0.2"], "max_bytes": MAX_BYTES, "timeout_seconds": FETCH_TIMEOUT_S}}}))
    server = servers.start("media-uri-h2c", ["--config", str(config)], "h2c")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def default_server(servers):
    """A server with no media.fetch settings: the guard's defaults."""
    return servers.get("plain", "h2c")


def request_for(*media: prism_pb2.Media, tool_result: bool = False) -> prism_pb2.GenerateRequest:
    parts = [prism_pb2.Part(media=m) for m in media]
    if tool_result:
        parts = [prism_pb2.Part(tool_result=prism_pb2.ToolResult(tool_call_id="call_1", content=parts))]
    return prism_pb2.GenerateRequest(
        messages=[prism_pb2.Message(role=prism_pb2.ROLE_USER, parts=[prism_pb2.Part(text="What is this?"), *parts])],
        route=prism_pb2.Route(model="local/mediainfo"))


def generate(server, request, timeout=RPC_TIMEOUT_S):
    with server.channel() as channel:
        events = list(prism_pb2_grpc.PrismStub(channel).Generate(request, timeout=timeout))
    routed = [e.routed for e in events if e.WhichOneof("event") == "routed"]
    text = "".join(e.text.text for e in events if e.WhichOneof("event") == "text")
    return routed, text


def refused(server, request, code, *fragments, timeout=RPC_TIMEOUT_S) -> str:
    """Runs a Generate that must fail with `code`; its message must hold every fragment."""
    def call():
        with server.channel() as channel:
            return list(prism_pb2_grpc.PrismStub(channel).Generate(request, timeout=timeout))
    err = rpc_error(call, f"Generate with {request.messages[0].parts[-1]}")
    assert err.code() == code, f"expected {code.name}, got {err.code().name}: {err.details()!r}"
    for fragment in fragments:
        assert fragment in err.details(), f"{fragment!r} missing from the message {err.details()!r}"
    return err.details()


# --- fetched and decoded ------------------------------------------------------------------------


def test_an_image_by_uri_reaches_the_model(server, allowed):
    url = allowed.url("/image.png")
    routed, text = generate(server, request_for(prism_pb2.Media(uri=url)))
    # Sniffed (the origin said application/octet-stream), named after the URL's last segment.
    assert "image.png image/png: 64x48 pixels" in text, text
    assert routed and any(a.startswith(f"uri '{url}'→image/png") for a in routed[0].adaptations), routed
    assert allowed.hits.count("/image.png") >= 1, allowed.hits


def test_the_same_uri_twice_is_fetched_once(server, allowed):
    url = allowed.url("/image.png?twice")
    _, text = generate(server, request_for(prism_pb2.Media(uri=url, name="a"), prism_pb2.Media(uri=url, name="b")))
    assert "a image/png: 64x48 pixels" in text and "b image/png: 64x48 pixels" in text, text
    assert allowed.hits.count("/image.png?twice") == 1, allowed.hits


def test_data_uris_base64_and_percent_encoded(server):
    encoded = base64.b64encode(IMAGE).decode()
    request = request_for(
        # The type in the URI is only declared: this one lies, and the bytes win.
        prism_pb2.Media(uri=f"data:image/jpeg;base64,{encoded}", name="b64"),
        prism_pb2.Media(uri="data:application/octet-stream," + urllib.parse.quote_from_bytes(IMAGE), name="pct"))
    routed, text = generate(server, request)
    assert "b64 image/png: 64x48 pixels" in text and "pct image/png: 64x48 pixels" in text, text
    assert sum(a.startswith("data uri→image/png") for a in routed[0].adaptations) == 2, routed[0].adaptations


def test_a_malformed_data_uri_is_invalid(server):
    refused(server, request_for(prism_pb2.Media(uri="data:image/png;base64,@@@not-base64@@@")),
            StatusCode.INVALID_ARGUMENT, "messages[0].parts[1].media.uri", "not base64")


def test_five_redirects_are_followed_six_are_not(server, allowed):
    routed, text = generate(server, request_for(prism_pb2.Media(uri=allowed.url("/chain/5"))))
    assert "image/png: 64x48 pixels" in text, text
    assert any("after 5 redirects" in a for a in routed[0].adaptations), routed[0].adaptations
    url = allowed.url("/chain/6")
    refused(server, request_for(prism_pb2.Media(uri=url)), StatusCode.FAILED_PRECONDITION,
            url, "redirected more than 5 times")


# --- the SSRF guard -----------------------------------------------------------------------------


def test_loopback_is_refused_by_default(default_server, private):
    url = private.url("/image.png?default")
    refused(default_server, request_for(prism_pb2.Media(uri=url)), StatusCode.FAILED_PRECONDITION,
            url, "resolves to 127.0.0.1, a loopback address; allow it with media.fetch.allow_hosts")
    assert "/image.png?default" not in private.hits, "the refused origin was contacted"


def test_loopback_not_in_the_allow_list_is_refused(server, allowed, private):
    url = private.url("/image.png?configured")
    refused(server, request_for(prism_pb2.Media(uri=url)), StatusCode.FAILED_PRECONDITION, url, "127.0.0.1", "loopback")
    assert "/image.png?configured" not in private.hits


@pytest.mark.parametrize("target", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
def test_a_redirect_from_an_allowed_host_to_loopback_is_refused(server, allowed, private, target):
    port = private.server.server_address[1]
    to = f"http://{target}:{port}/image.png?via-redirect"
    url = allowed.url("/redirect?" + urllib.parse.urlencode({"to": to}))
    message = refused(server, request_for(prism_pb2.Media(uri=url)), StatusCode.FAILED_PRECONDITION,
                      url, f"redirected to '{to}'", "loopback", "media.fetch.allow_hosts")
    if target.startswith("[::ffff:"):
        assert "an IPv6 form of 127.0.0.1" in message, message
    assert not any(hit.startswith("/image.png?via-redirect") for hit in private.hits), private.hits
    assert any(hit.startswith("/redirect?") for hit in allowed.hits), allowed.hits


@pytest.mark.parametrize("host, reason", [
    ("169.254.169.254", "169.254.169.254, the cloud metadata address"),
    ("10.1.2.3", "10.1.2.3, a private address"),
    ("[fe80::1]", "fe80::1, a link-local address"),
    ("100.64.0.1", "100.64.0.1, a carrier-grade NAT (shared) address"),
    ("0.0.0.0", "0.0.0.0, an unspecified"),
])
def test_internal_addresses_are_refused_before_connecting(default_server, host, reason):
    # None of these is reachable from the test machine: an attempt to connect would time out or
    # fail with a transport error, not FAILED_PRECONDITION naming the address class.
    url = f"http://{host}/latest/meta-data/"
    refused(default_server, request_for(prism_pb2.Media(uri=url)), StatusCode.FAILED_PRECONDITION,
            url, f"resolves to {reason}")


def test_a_uri_inside_a_tool_result_is_fetched_and_guarded(server, allowed, private):
    url = private.url("/image.png?tool")
    refused(server, request_for(prism_pb2.Media(uri=url), tool_result=True), StatusCode.FAILED_PRECONDITION,
            "messages[0].parts[1].tool_result.content[0].media.uri", url, "loopback")
    generate(server, request_for(prism_pb2.Media(uri=allowed.url("/image.png?tool")), tool_result=True))
    assert allowed.hits.count("/image.png?tool") == 1, allowed.hits


# --- limits and failures of the origin ----------------------------------------------------------


@pytest.mark.parametrize("path", ["/big", "/big-declared"])
def test_too_large_stops_the_transfer(server, allowed, path):
    url = allowed.url(path)
    refused(server, request_for(prism_pb2.Media(uri=url)), StatusCode.RESOURCE_EXHAUSTED,
            url, f"larger than media.fetch.max_bytes ({MAX_BYTES} bytes)")
    # The origin had 50 times the limit to send: it finds the connection closed instead.
    allowed.wait_for(f"the client of {path} go away", lambda: path in allowed.cut)


def test_a_requests_uris_together_are_limited(server, allowed):
    # Each is under max_bytes; five of them are over the request's 4 × max_bytes.
    urls = [allowed.url(f"/sized?n={9 * MAX_BYTES // 10}&i={i}") for i in range(5)]
    refused(server, request_for(*[prism_pb2.Media(uri=url) for url in urls]), StatusCode.RESOURCE_EXHAUSTED,
            f"takes the media fetched for this request past {4 * MAX_BYTES} bytes (4 × media.fetch.max_bytes)")


def test_a_stalled_origin_hits_the_fetch_timeout(server, allowed):
    url = allowed.url("/stall?timeout")
    refused(server, request_for(prism_pb2.Media(uri=url)), StatusCode.DEADLINE_EXCEEDED,
            url, f"was not fetched within media.fetch.timeout_seconds ({FETCH_TIMEOUT_S} s)")
    allowed.wait_for("the timed-out fetch close its connection", lambda: "/stall?timeout" in allowed.cut)


def test_the_rpc_deadline_ends_the_fetch(patient, private):
    # The RPC's 1 s deadline comes long before the fetch timeout (30 s): the status is the
    # deadline's, whether the runtime or the fetcher reports it first, and the fetch stops.
    refused(patient, request_for(prism_pb2.Media(uri=private.url("/stall?deadline"))), StatusCode.DEADLINE_EXCEEDED,
            timeout=1.0)
    private.wait_for("the fetch end at the deadline", lambda: "/stall?deadline" in private.cut)


def test_cancelling_the_rpc_stops_the_fetch(patient, private):
    with patient.channel() as channel:
        call = prism_pb2_grpc.PrismStub(channel).Generate(
            request_for(prism_pb2.Media(uri=private.url("/stall?cancel"))), timeout=RPC_TIMEOUT_S)
        private.wait_for("the fetch start", lambda: "/stall?cancel" in private.hits)
        call.cancel()
        private.wait_for("the cancelled fetch close its connection", lambda: "/stall?cancel" in private.cut)
    assert_still_fetching(patient, private)


def test_a_404_names_the_uri_and_the_status(server, allowed):
    url = allowed.url("/missing")
    refused(server, request_for(prism_pb2.Media(uri=url)), StatusCode.FAILED_PRECONDITION, url, "answered HTTP 404")


def test_an_origin_that_may_recover_is_unavailable(server, allowed):
    url = allowed.url("/overloaded")
    refused(server, request_for(prism_pb2.Media(uri=url)), StatusCode.UNAVAILABLE, url, "answered HTTP 503")
    with socket.socket() as closed:  # a port nobody listens on once this is closed
        closed.bind(("127.0.0.2", 0))
        port = closed.getsockname()[1]
    url = f"http://127.0.0.2:{port}/image.png"
    refused(server, request_for(prism_pb2.Media(uri=url)), StatusCode.UNAVAILABLE, url, "cannot be fetched")


@pytest.mark.parametrize("uri, scheme", [("ftp://127.0.0.2/image.png", "ftp"), ("file:///etc/passwd", "file"),
                                         ("gopher://127.0.0.2/", "gopher")])
def test_an_unknown_scheme_is_invalid(server, uri, scheme):
    refused(server, request_for(prism_pb2.Media(uri=uri)), StatusCode.INVALID_ARGUMENT,
            "messages[0].parts[1].media.uri", uri, f"the scheme '{scheme}' is not fetched")


def test_data_and_uri_together_are_invalid(server, allowed):
    refused(server, request_for(prism_pb2.Media(uri=allowed.url("/image.png"), data=IMAGE)),
            StatusCode.INVALID_ARGUMENT, "both data and uri")


def assert_still_fetching(server, origin) -> None:
    """The server still fetches and answers."""
    _, text = generate(server, request_for(prism_pb2.Media(uri=origin.url("/image.png?after"))))
    assert "image/png: 64x48 pixels" in text, text


def test_a_stalled_fetch_does_not_hold_up_others(patient, private):
    with patient.channel() as channel:
        stalled = prism_pb2_grpc.PrismStub(channel).Generate(
            request_for(prism_pb2.Media(uri=private.url("/stall?beside"))), timeout=RPC_TIMEOUT_S)
        private.wait_for("the stalled fetch start", lambda: "/stall?beside" in private.hits)
        assert_still_fetching(patient, private)
        stalled.cancel()


# --- https ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def https_origin(private, certs, session_dir):
    """nghttpx with the suite CA's certificate for 127.0.0.1 (ALPN h2 and http/1.1) in front of
    the 127.0.0.1 origin."""
    front = TLSFront("media-uri", private.server.server_address[1], certs.server_cert, certs.server_key,
                     session_dir / "media-uri-front").start()
    yield front
    front.stop()


def loopback_server(servers, tmp_path_factory, name: str, env: dict[str, str]):
    """A server that allows 127.0.0.1, with the default fetch limits (30 s)."""
    config = tmp_path_factory.mktemp(name) / "prism.json"
    config.write_text(json.dumps({"media": {"fetch": {"allow_hosts": ["127.0.0.1"]}}}))
    return servers.start(f"{name}-h2c", ["--config", str(config)], "h2c", env=env)


@pytest.fixture(scope="module")
def patient(servers, tmp_path_factory, certs):
    """Allows 127.0.0.1 (the private origin), trusts the suite's CA, and keeps the default fetch
    timeout of 30 s: longer than WAIT_S, so an origin that sees its client go away within WAIT_S
    saw a cancellation or a deadline, not the fetch timeout."""
    server = loopback_server(servers, tmp_path_factory, "media-uri-patient", {"SSL_CERT_FILE": str(certs.ca_cert)})
    yield server
    server.stop()


def test_https_with_the_trust_store_of_ssl_cert_file(patient, https_origin):
    url = https_origin.url + "/image.png?https"
    routed, text = generate(patient, request_for(prism_pb2.Media(uri=url)))
    assert "image.png image/png: 64x48 pixels" in text, text
    assert any(a.startswith(f"uri '{url}'→image/png") for a in routed[0].adaptations), routed
    # HTTP/1.1 even where the origin offers h2 (a stopped fetch must close its connection).
    entries = https_origin.wait_for_entries(1)
    assert [e["alpn"] for e in entries if e["path"] == "/image.png"] == ["http/1.1"], entries


def test_https_with_an_untrusted_certificate_is_refused(servers, tmp_path_factory, https_origin):
    server = loopback_server(servers, tmp_path_factory, "media-uri-untrusted", {"SSL_CERT_FILE": "", "SSL_CERT_DIR": ""})
    try:
        url = https_origin.url + "/image.png?untrusted"
        refused(server, request_for(prism_pb2.Media(uri=url)), StatusCode.FAILED_PRECONDITION, url, "cannot be fetched", "certificate")
    finally:
        server.stop()


# --- settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fetch, named", [
    ({"allow_hosts": ["http://internal/"]}, "media.fetch.allow_hosts entry 'http://internal/'"),
    ({"allow_hosts": ["10.0.0.0/40"]}, "media.fetch.allow_hosts entry '10.0.0.0/40'"),
    ({"max_bytes": 0}, "media.fetch.max_bytes must be between 1 and"),
    ({"timeout_seconds": -1}, "media.fetch.timeout_seconds must be between 1 and"),
])
def test_bad_settings_stop_the_server_at_start(servers, tmp_path, fetch, named):
    config = tmp_path / "prism.json"
    config.write_text(json.dumps({"media": {"fetch": fetch}}))
    with pytest.raises(ServerStartError) as failure:
        servers.start(f"media-uri-bad-{tmp_path.name}", ["--config", str(config)], "h2c").kill()
    assert named in str(failure.value), str(failure.value)
