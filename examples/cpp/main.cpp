// A C++ client of Prism: sends an image and a question with Generate and prints the answer as it
// streams, then the usage. Built by the Makefile beside it (stubs generated from proto/ at build time).
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include <grpcpp/grpcpp.h>

#include "prism/v1/prism.grpc.pb.h"

namespace {

const char* kUsage = "usage: prism-cpp-client [--server HOST:PORT] [--model provider/model] IMAGE QUESTION\n";

int fail(const std::string& message) {
    std::cerr << "prism-cpp-client: " << message << "\n";
    return 1;
}

// The MIME type the file's extension claims; the server sniffs the bytes and takes it as a hint.
std::string mime_type(const std::string& path) {
    auto dot = path.rfind('.');
    std::string ext = dot == std::string::npos ? "" : path.substr(dot + 1);
    for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (ext == "png") return "image/png";
    if (ext == "jpg" || ext == "jpeg") return "image/jpeg";
    if (ext == "webp") return "image/webp";
    if (ext == "gif") return "image/gif";
    if (ext == "pdf") return "application/pdf";
    return "";
}

}  // namespace

int main(int argc, char** argv) {
    const char* env = std::getenv("PRISM_ADDRESS");
    std::string server = env && *env ? env : "127.0.0.1:50051", model;
    std::string positional[2];
    int count = 0;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if ((arg == "--server" || arg == "--model") && i + 1 < argc) {
            (arg == "--server" ? server : model) = argv[++i];
        } else if (arg.rfind("--", 0) != 0 && count < 2) {
            positional[count++] = arg;
        } else {
            std::cerr << kUsage;
            return 2;
        }
    }
    if (count != 2) {
        std::cerr << kUsage;
        return 2;
    }
    const std::string& image = positional[0];
    std::ifstream file(image, std::ios::binary);
    if (!file) return fail("cannot read " + image);
    std::stringstream bytes;
    bytes << file.rdbuf();

    prism::v1::GenerateRequest request;
    auto* message = request.add_messages();
    message->set_role(prism::v1::ROLE_USER);
    auto* media = message->add_parts()->mutable_media();
    media->set_data(bytes.str());
    media->set_mime_type(mime_type(image));
    media->set_name(image.substr(image.rfind('/') + 1));
    message->add_parts()->set_text(positional[1]);
    request.mutable_route()->set_model(model);

    // Plaintext h2c, as prism-server serves by default; grpc::SslCredentials for a TLS server.
    auto stub = prism::v1::Prism::NewStub(grpc::CreateChannel(server, grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(2));
    if (const char* key = std::getenv("PRISM_API_KEY"); key && *key) {
        context.AddMetadata("authorization", std::string("Bearer ") + key);
    }
    auto reader = stub->Generate(&context, request);
    prism::v1::GenerateEvent event;
    while (reader->Read(&event)) {
        switch (event.event_case()) {
        case prism::v1::GenerateEvent::kRouted:
            std::cout << "routed: " << event.routed().model() << "\n";  // "provider/model"
            for (const auto& step : event.routed().adaptations()) std::cout << "adapted: " << step << "\n";
            break;
        case prism::v1::GenerateEvent::kText:
            std::cout << event.text().text() << std::flush;  // printed as it arrives
            break;
        case prism::v1::GenerateEvent::kUsage: {
            const auto& u = event.usage();
            std::printf("\nusage: %llu input tokens, %llu output tokens, $%.6f\n",
                        static_cast<unsigned long long>(u.input_tokens()),
                        static_cast<unsigned long long>(u.output_tokens()), u.cost_usd_micros() / 1e6);
            std::fflush(stdout);
            break;
        }
        case prism::v1::GenerateEvent::kFinished:
            std::cout << "finished: " << prism::v1::StopReason_Name(event.finished().stop_reason()) << "\n";
            break;
        default:
            break;
        }
    }
    grpc::Status status = reader->Finish();
    if (!status.ok()) {
        // The code's name and the message, which names what was wrong.
        static const char* names[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                                      "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                                      "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
                                      "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
        int code = status.error_code();
        return fail(std::string(code >= 0 && code <= 16 ? names[code] : "UNKNOWN") + ": " + status.error_message());
    }
    return 0;
}
