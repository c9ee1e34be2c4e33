// `prism health` and `prism services`: whether a server is up and what it serves.
import ArgumentParser
import NIOCore
import PrismProto
import PrismRPC

struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "health", abstract: "Ask the server whether it is serving.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Service name (empty: the server as a whole).") var service = ""
    @OptionGroup var output: JSONOption

    func run() async throws {
        let client = try await connection.connect()
        defer { Task { await client.close() } }
        do {
            let builder = ProtoBuilder()
            let request = builder.message(grpc__health__v1__health_check_request__init)
            request.pointee.service = builder.string(service)
            var body = ByteBuffer()
            builder.pack(request, into: &body)
            let reply = try await client.unary("/grpc.health.v1.Health/Check", body, metadata: connection.metadata)
            let response = try ProtoMessage(grpc__health__v1__health_check_response__init, buffer: reply)
            if output.json { try JSONOutput.message(grpc__health__v1__health_check_response__init, reply) }
            switch response.pointee.status {
            case GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING: if !output.json { print("SERVING") }
            case GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING: if !output.json { print("NOT_SERVING") }; throw ExitCode(2)
            default: if !output.json { print("UNKNOWN") }; throw ExitCode(2)
            }
        } catch let error as RPCError {
            throw reportFailure(error)
        }
    }
}

struct ServicesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "services", abstract: "List the server's gRPC services (via reflection).")

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: JSONOption

    func run() async throws {
        let client = try await connection.connect()
        defer { Task { await client.close() } }
        do {
            let builder = ProtoBuilder()
            let request = builder.message(grpc__reflection__v1__server_reflection_request__init)
            request.pointee.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES
            request.pointee.list_services = builder.string("*")
            var body = ByteBuffer()
            builder.pack(request, into: &body)
            let call = client.makeCall("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", metadata: connection.metadata)
            try await call.send(body)
            call.end()
            for try await reply in call.responses {
                let response = try ProtoMessage(grpc__reflection__v1__server_reflection_response__init, buffer: reply)
                guard let list = response.pointee.list_services_response else { continue }
                if output.json {
                    // The ListServiceResponse: {"service": [{"name": ...}, ...]}.
                    var bytes = ByteBuffer()
                    ProtoBuilder().pack(list, into: &bytes)
                    try JSONOutput.message(grpc__reflection__v1__list_service_response__init, bytes)
                    continue
                }
                for i in 0..<list.pointee.n_service {
                    print(String(protoC: list.pointee.service[i]!.pointee.name))
                }
            }
        } catch let error as RPCError {
            throw reportFailure(error)
        }
    }
}
