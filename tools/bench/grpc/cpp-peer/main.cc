// The gRPC C++ benchmark peer (tools/bench/grpc/run.sh): Debian's libgrpc++ serving
// grpc.health.v1.Health/Check and an interop-style grpc.testing.TestService/StreamingOutputCall
// over h2c, on the callback API (gRPC's recommended server API). The message and service code is
// generated from proto/ by protoc and grpc_cpp_plugin at build time. Usage: cpp-peer PORT.
#include <cstdio>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/testing/test.grpc.pb.h"

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using grpc::testing::StreamingOutputCallRequest;
using grpc::testing::StreamingOutputCallResponse;
using grpc::testing::TestService;

// Health/Check answers SERVING for every service name, as Prism does for "".
class HealthService final : public Health::CallbackService {
  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const HealthCheckRequest*,
                                  HealthCheckResponse* response) override {
    response->set_status(HealthCheckResponse::SERVING);
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

// Writes one response per ResponseParameters entry, each with `size` zero bytes, one write in
// flight at a time (the callback API allows no more); deletes itself when the RPC is done.
class StreamingOutputWriter final : public grpc::ServerWriteReactor<StreamingOutputCallResponse> {
 public:
  explicit StreamingOutputWriter(const StreamingOutputCallRequest* request) : request_(*request) {
    WriteNext();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    WriteNext();
  }

  void OnDone() override { delete this; }

 private:
  void WriteNext() {
    if (next_ == request_.response_parameters_size()) {
      Finish(grpc::Status::OK);
      return;
    }
    const int size = request_.response_parameters(next_++).size();
    response_.mutable_payload()->set_body(std::string(static_cast<size_t>(size), '\0'));
    StartWrite(&response_);
  }

  StreamingOutputCallRequest request_;
  StreamingOutputCallResponse response_;
  int next_ = 0;
};

class TestServiceImpl final : public TestService::CallbackService {
  grpc::ServerWriteReactor<StreamingOutputCallResponse>* StreamingOutputCall(
      grpc::CallbackServerContext*, const StreamingOutputCallRequest* request) override {
    return new StreamingOutputWriter(request);
  }
};

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: cpp-peer PORT\n");
    return 2;
  }
  const std::string address = std::string("127.0.0.1:") + argv[1];
  HealthService health;
  TestServiceImpl test;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials());
  builder.RegisterService(&health);
  builder.RegisterService(&test);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    std::fprintf(stderr, "cpp-peer: cannot listen on %s\n", address.c_str());
    return 1;
  }
  std::printf("cpp-peer listening on %s (h2c)\n", address.c_str());
  std::fflush(stdout);
  server->Wait();
  return 0;
}
