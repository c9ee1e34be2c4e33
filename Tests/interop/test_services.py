"""The standard services (grpc.health.v1.Health, server reflection v1 and v1alpha) and the routing of
prism.v1.Prism, seen from grpcio the way generic tools (grpcurl, grpc_health_probe) see them."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc.health.v1 import health_pb2, health_pb2_grpc
from grpc.reflection.v1 import reflection_pb2 as reflection_v1_pb2
from grpc.reflection.v1 import reflection_pb2_grpc as reflection_v1_pb2_grpc
from grpc.reflection.v1alpha import reflection_pb2 as reflection_v1alpha_pb2
from grpc.reflection.v1alpha import reflection_pb2_grpc as reflection_v1alpha_pb2_grpc
from grpc.testing import empty_pb2, test_pb2_grpc
from prism.v1 import prism_pb2

from harness import RPC_TIMEOUT_S, assert_status, rpc_error

StatusCode = grpc.StatusCode
SERVING = health_pb2.HealthCheckResponse.SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN

PRISM_SERVICE = "prism.v1.Prism"
PRISM_FILE = "prism/v1/prism.proto"
# The methods ../shared/API.md promises; the proto may grow more, never fewer.
PRISM_METHODS = {"Generate", "Extract", "Converse", "Transcribe", "Synthesize", "ListProviders", "SubmitBatch",
                 "GetBatch", "CancelBatch", "StreamBatchResults", "IndexDocument", "Query"}

REFLECTION_VERSIONS = {
    "v1": (reflection_v1_pb2, reflection_v1_pb2_grpc),
    "v1alpha": (reflection_v1alpha_pb2, reflection_v1alpha_pb2_grpc),
}


# --- health ------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["", PRISM_SERVICE])
def test_health_check_serving(channel, service):
    health = health_pb2_grpc.HealthStub(channel)
    response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=RPC_TIMEOUT_S)
    assert response.status == SERVING, f"Check({service!r}) = {health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)}"


def test_health_check_unknown_service_is_not_found(channel):
    health = health_pb2_grpc.HealthStub(channel)
    err = rpc_error(lambda: health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"),
                                         timeout=RPC_TIMEOUT_S), "Check of an unknown service")
    assert_status(err, StatusCode.NOT_FOUND, "Health/Check('no.such.Service')")


@pytest.mark.parametrize("service", ["", PRISM_SERVICE])
def test_health_watch_sends_current_status_first(channel, service):
    health = health_pb2_grpc.HealthStub(channel)
    call = health.Watch(health_pb2.HealthCheckRequest(service=service), timeout=RPC_TIMEOUT_S)
    try:
        first = next(call)
        assert first.status == SERVING
    finally:
        call.cancel()


def test_health_watch_unknown_service_says_service_unknown(channel):
    # grpc/grpc doc/health-checking.md: Watch of an unknown service answers SERVICE_UNKNOWN and keeps
    # the call open (the service may appear later) instead of failing it.
    health = health_pb2_grpc.HealthStub(channel)
    call = health.Watch(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=RPC_TIMEOUT_S)
    try:
        first = next(call)
        assert first.status == SERVICE_UNKNOWN, \
            f"first Watch message is {health_pb2.HealthCheckResponse.ServingStatus.Name(first.status)}"
    finally:
        call.cancel()


# --- reflection --------------------------------------------------------------------------------


class Reflector:
    """One reflection client of either version."""

    def __init__(self, channel, version: str):
        self.pb, grpc_mod = REFLECTION_VERSIONS[version]
        self.stub = grpc_mod.ServerReflectionStub(channel)

    def ask(self, *requests):
        responses = list(self.stub.ServerReflectionInfo(iter(requests), timeout=RPC_TIMEOUT_S))
        assert len(responses) == len(requests), f"{len(requests)} requests got {len(responses)} responses"
        return responses

    def one(self, **request):
        return self.ask(self.pb.ServerReflectionRequest(**request))[0]

    def services(self) -> list[str]:
        response = self.one(list_services="")
        assert response.WhichOneof("message_response") == "list_services_response", response
        return [s.name for s in response.list_services_response.service]

    def files(self, **request) -> list[bytes]:
        response = self.one(**request)
        kind = response.WhichOneof("message_response")
        assert kind == "file_descriptor_response", f"{request} answered {kind}: {response}"
        return list(response.file_descriptor_response.file_descriptor_proto)


@pytest.fixture(params=sorted(REFLECTION_VERSIONS))
def reflector(request, channel) -> Reflector:
    return Reflector(channel, request.param)


def test_reflection_lists_services(reflector):
    listed = reflector.services()
    for name in (PRISM_SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                 "grpc.testing.TestService"):
        assert name in listed, f"{name} missing from list_services: {listed}"


def _parse(blobs: list[bytes]) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    files = {}
    for blob in blobs:
        fdp = descriptor_pb2.FileDescriptorProto()
        fdp.ParseFromString(blob)
        assert fdp.name, "a FileDescriptorProto without a name"
        files[fdp.name] = fdp
    return files


def test_reflection_file_containing_symbol(reflector):
    blobs = reflector.files(file_containing_symbol="prism.v1.GenerateRequest")
    files = _parse(blobs)
    assert PRISM_FILE in files, f"file_containing_symbol(prism.v1.GenerateRequest) sent {sorted(files)}"
    prism = files[PRISM_FILE]
    assert prism.package == "prism.v1"
    assert "GenerateRequest" in [m.name for m in prism.message_type]
    services = {s.name: {m.name for m in s.method} for s in prism.service}
    assert "Prism" in services, f"services in {PRISM_FILE}: {sorted(services)}"
    missing = PRISM_METHODS - services["Prism"]
    assert not missing, f"prism.v1.Prism lacks {sorted(missing)}"


def test_reflection_file_by_filename(reflector):
    files = _parse(reflector.files(file_by_filename=PRISM_FILE))
    assert PRISM_FILE in files, f"file_by_filename({PRISM_FILE}) sent {sorted(files)}"


def test_reflection_descriptors_build_a_pool_like_a_generic_client(reflector):
    """What grpcurl does: fetch the file of a service, fetch any dependency it lacks by name, load
    them all into a descriptor pool and resolve the service's methods and message types."""
    blobs = {}
    for blob in reflector.files(file_containing_symbol=PRISM_SERVICE):
        fdp = descriptor_pb2.FileDescriptorProto.FromString(blob)
        blobs[fdp.name] = blob
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(name: str, chain: tuple[str, ...] = ()) -> None:
        if name in added:
            return
        assert name not in chain, f"import cycle {chain + (name,)}"
        if name not in blobs:
            fetched = reflector.files(file_by_filename=name)
            for blob in fetched:
                blobs[descriptor_pb2.FileDescriptorProto.FromString(blob).name] = blob
            assert name in blobs, f"file_by_filename({name}) did not send {name}"
        for dep in descriptor_pb2.FileDescriptorProto.FromString(blobs[name]).dependency:
            add(dep, chain + (name,))
        pool.AddSerializedFile(blobs[name])
        added.add(name)

    add(PRISM_FILE)
    service = pool.FindServiceByName(PRISM_SERVICE)
    assert PRISM_METHODS <= {m.name for m in service.methods}
    generate = service.methods_by_name["Generate"]
    assert generate.input_type.full_name == "prism.v1.GenerateRequest"
    assert generate.output_type.full_name == "prism.v1.GenerateEvent"


def test_reflection_test_service_symbol(reflector):
    files = _parse(reflector.files(file_containing_symbol="grpc.testing.TestService"))
    assert "grpc/testing/test.proto" in files, sorted(files)


def test_reflection_unknown_symbol_is_not_found(reflector):
    response = reflector.one(file_containing_symbol="no.such.Symbol")
    assert response.WhichOneof("message_response") == "error_response", response
    assert response.error_response.error_code == StatusCode.NOT_FOUND.value[0], response.error_response


def test_reflection_answers_several_requests_on_one_stream_in_order(reflector):
    pb = reflector.pb
    responses = reflector.ask(
        pb.ServerReflectionRequest(list_services=""),
        pb.ServerReflectionRequest(file_containing_symbol="prism.v1.GenerateRequest"),
        pb.ServerReflectionRequest(file_by_filename="grpc/health/v1/health.proto"),
    )
    kinds = [r.WhichOneof("message_response") for r in responses]
    assert kinds == ["list_services_response", "file_descriptor_response", "file_descriptor_response"], kinds
    assert responses[1].original_request.file_containing_symbol == "prism.v1.GenerateRequest"
    assert "grpc/health/v1/health.proto" in _parse(list(responses[2].file_descriptor_response.file_descriptor_proto))


# --- prism.v1.Prism routing --------------------------------------------------------------------


def _prism_method(channel, name: str):
    """A grpcio callable for prism.v1.Prism/NAME with the right shape, from the generated descriptor."""
    method = prism_pb2.DESCRIPTOR.services_by_name["Prism"].methods_by_name[name]
    path = f"/{PRISM_SERVICE}/{name}"
    make = {(False, False): channel.unary_unary, (False, True): channel.unary_stream,
            (True, False): channel.stream_unary, (True, True): channel.stream_stream}[
        (method.client_streaming, method.server_streaming)]
    return method, make(path, request_serializer=lambda m: m.SerializeToString(), response_deserializer=lambda b: b)


def _call_with_empty_request(channel, name: str):
    """Calls the method with a default request (or an empty request stream); returns the final
    status code and message."""
    method, call = _prism_method(channel, name)
    request = prism_pb2.__dict__[method.input_type.name]()
    try:
        if method.client_streaming:
            result = call(iter([]), timeout=RPC_TIMEOUT_S)
        else:
            result = call(request, timeout=RPC_TIMEOUT_S)
        if method.server_streaming:
            list(result)
            return result.code(), result.details()
        return StatusCode.OK, ""
    except grpc.RpcError as err:
        return err.code(), err.details()


@pytest.mark.parametrize("name", ["ListProviders", "Generate"])
def test_prism_method_answers_empty_request_with_a_clear_status(interop_server, name):
    with interop_server.channel() as channel:
        code, details = _call_with_empty_request(channel, name)
    # An empty request is either served, refused as invalid (naming what is missing), or the
    # method is not built yet; never a crash, a hang or a silent success of a missing method.
    assert code in (StatusCode.OK, StatusCode.UNIMPLEMENTED, StatusCode.INVALID_ARGUMENT), \
        f"prism.v1.Prism/{name} answered {code.name} {details!r}; expected OK, INVALID_ARGUMENT or UNIMPLEMENTED"
    if code != StatusCode.OK:
        assert details, f"prism.v1.Prism/{name} answered {code.name} without a message saying why"


@pytest.mark.parametrize("name", sorted(PRISM_METHODS))
def test_every_prism_method_is_routed(interop_server, name):
    """Each method reaches a handler: it answers UNIMPLEMENTED with a message while it is not built,
    or a status API.md allows for an empty request once it is, never a crash or a hang."""
    allowed = {StatusCode.OK, StatusCode.UNIMPLEMENTED, StatusCode.INVALID_ARGUMENT,
               StatusCode.FAILED_PRECONDITION, StatusCode.NOT_FOUND}
    with interop_server.channel() as channel:
        code, details = _call_with_empty_request(channel, name)
    assert code in allowed, f"prism.v1.Prism/{name} with an empty request answered {code.name} {details!r}"
    if code != StatusCode.OK:
        assert details, f"prism.v1.Prism/{name} answered {code.name} without a message"


def test_server_without_interop_has_no_test_service(servers):
    server = servers.get("plain", "h2c")
    with server.channel() as channel:
        listed = Reflector(channel, "v1").services()
        assert PRISM_SERVICE in listed, listed
        assert "grpc.testing.TestService" not in listed, f"TestService listed without --interop: {listed}"
        stub = test_pb2_grpc.TestServiceStub(channel)
        err = rpc_error(lambda: stub.EmptyCall(empty_pb2.Empty(), timeout=RPC_TIMEOUT_S),
                        "TestService/EmptyCall without --interop")
        assert_status(err, StatusCode.UNIMPLEMENTED, "TestService/EmptyCall without --interop")
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=RPC_TIMEOUT_S).status == SERVING
