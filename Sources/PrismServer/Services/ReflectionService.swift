// gRPC server reflection (grpc.reflection.v1 and the v1alpha name most tools still call):
// lists the services and hands out the FileDescriptorProtos compiled into the server, so
// grpcurl, Postman and friends can discover and call the API without .proto files.
import NIOCore
import PrismProto
import PrismRPC

enum ReflectionService {
    /// Both names share one implementation: the two protos are identical on the wire.
    static let serviceNames = ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]

    static func definitions(index: DescriptorIndex, services: @escaping @Sendable () -> [String]) -> [ServiceDefinition] {
        serviceNames.map { name in
            var service = ServiceDefinition(name: name)
            service.add("ServerReflectionInfo", .bidirectional { requests, writer, _ in
                for try await body in requests {
                    try await writer.write(answer(body, index: index, services: services()))
                }
            })
            return service
        }
    }

    typealias Response = Grpc__Reflection__V1__ServerReflectionResponse

    static func answer(_ body: ByteBuffer, index: DescriptorIndex, services: [String]) throws -> ByteBuffer {
        let request = try decodeRequest(grpc__reflection__v1__server_reflection_request__init, body)
        let builder = ProtoBuilder()
        let response = builder.message(grpc__reflection__v1__server_reflection_response__init)
        response.pointee.valid_host = builder.string(String(protoC: request.pointee.host))
        response.pointee.original_request = request.pointer

        let q = request.pointee
        switch q.message_request_case {
        case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
            let list = builder.message(grpc__reflection__v1__list_service_response__init)
            let entries = services.map { name -> UnsafeMutablePointer<Grpc__Reflection__V1__ServiceResponse> in
                let entry = builder.message(grpc__reflection__v1__service_response__init)
                entry.pointee.name = builder.string(name)
                return entry
            }
            list.pointee.n_service = entries.count
            list.pointee.service = builder.array(entries)
            response.pointee.message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE
            response.pointee.list_services_response = list

        case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
            let name = String(protoC: q.file_by_filename)
            setFiles(index.fileDescriptorProtos(fileName: name), missing: "file '\(name)' not found", response, builder)

        case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
            let symbol = String(protoC: q.file_containing_symbol)
            setFiles(index.fileDescriptorProtos(containingSymbol: symbol), missing: "symbol '\(symbol)' not found", response, builder)

        case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
            setError(.notFound, "Prism's API declares no extensions", response, builder)

        case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
            let type = String(protoC: q.all_extension_numbers_of_type)
            if index.fileName(containingSymbol: type) != nil {
                let numbers = builder.message(grpc__reflection__v1__extension_number_response__init)
                numbers.pointee.base_type_name = builder.string(type)
                response.pointee.message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE
                response.pointee.all_extension_numbers_response = numbers
            } else {
                setError(.notFound, "type '\(type)' not found", response, builder)
            }

        default:
            setError(.invalidArgument, "reflection request names no question", response, builder)
        }
        return withExtendedLifetime(request) { encodeResponse(builder, response) }
    }

    private static func setFiles(_ files: [[UInt8]]?, missing: String, _ response: UnsafeMutablePointer<Response>, _ builder: ProtoBuilder) {
        guard let files else {
            setError(.notFound, missing, response, builder)
            return
        }
        let answer = builder.message(grpc__reflection__v1__file_descriptor_response__init)
        answer.pointee.n_file_descriptor_proto = files.count
        answer.pointee.file_descriptor_proto = builder.array(files.map { builder.bytes($0) })
        response.pointee.message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE
        response.pointee.file_descriptor_response = answer
    }

    private static func setError(_ code: StatusCode, _ message: String, _ response: UnsafeMutablePointer<Response>, _ builder: ProtoBuilder) {
        let error = builder.message(grpc__reflection__v1__error_response__init)
        error.pointee.error_code = Int32(code.rawValue)
        error.pointee.error_message = builder.string(message)
        response.pointee.message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE
        response.pointee.error_response = error
    }
}
