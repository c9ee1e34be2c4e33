// ProtoMethods finds a method's request and response types from its HTTP path
// ("/prism.v1.Prism/Generate"), from protoc-c's service descriptors: what a JSON transport
// (Connect, gRPC-Web) needs to pick the types ProtoJSON converts.

/// One RPC method: its path, its message types and whether each side streams. Immutable: the two
/// pointers are to protoc-c's static const descriptors, which nothing writes.
public struct ProtoMethod: @unchecked Sendable {
    /// "/package.Service/Method", as in the HTTP/2 `:path` of a gRPC call.
    public let path: String
    public let input: UnsafePointer<ProtobufCMessageDescriptor>
    public let output: UnsafePointer<ProtobufCMessageDescriptor>
    /// Whether the client sends a stream of requests (Converse, Transcribe, IndexDocument).
    public let clientStreaming: Bool
    /// Whether the server answers with a stream (Generate, Synthesize, ...).
    public let serverStreaming: Bool
}

/// The methods of a set of services, by path. Immutable; share it.
public struct ProtoMethods: @unchecked Sendable {
    private let methods: [String: ProtoMethod]

    /// Every service protoc-c generated from proto/: prism.v1.Prism, grpc.health.v1.Health,
    /// both server reflection versions and the grpc.testing interop services.
    public static let embedded = ProtoMethods(services: [
        prism__v1__prism__descriptor,
        grpc__health__v1__health__descriptor,
        grpc__reflection__v1__server_reflection__descriptor,
        grpc__reflection__v1alpha__server_reflection__descriptor,
        grpc__testing__test_service__descriptor,
        grpc__testing__unimplemented_service__descriptor,
    ])

    /// The methods of `services`; whether each streams is taken from the embedded descriptor
    /// set (protobuf-c's descriptors do not say), unary when a service is not in it.
    public init(services: [ProtobufCServiceDescriptor], serializedSet: [UInt8] = DescriptorIndex.embeddedSerializedSet) {
        let streaming = Self.streaming(serializedSet)
        var methods: [String: ProtoMethod] = [:]
        for service in services {
            let serviceName = String(cString: service.name)
            for method in UnsafeBufferPointer(start: service.methods, count: Int(service.n_methods)) {
                let path = "/\(serviceName)/\(String(cString: method.name))"
                let flags = streaming[path] ?? (false, false)
                methods[path] = ProtoMethod(path: path, input: method.input, output: method.output,
                                            clientStreaming: flags.client, serverStreaming: flags.server)
            }
        }
        self.methods = methods
    }

    /// The method at `path`, e.g. "/prism.v1.Prism/Generate"; nil for no such method.
    public func method(path: String) -> ProtoMethod? {
        methods[path]
    }

    /// Every method path, sorted.
    public var paths: [String] { methods.keys.sorted() }

    /// Path to (client streaming, server streaming) for every method in the set.
    private static func streaming(_ serializedSet: [UInt8]) -> [String: (client: Bool, server: Bool)] {
        guard let set = try? ProtoMessage(google__protobuf__file_descriptor_set__init, bytes: serializedSet) else {
            return [:]
        }
        var result: [String: (client: Bool, server: Bool)] = [:]
        withExtendedLifetime(set) {
            for file in elements(set.pointee.file, set.pointee.n_file) {
                let package = String(protoC: file.pointee.package)
                for service in elements(file.pointee.service, file.pointee.n_service) {
                    let serviceName = package.isEmpty ? String(protoC: service.pointee.name) : "\(package).\(String(protoC: service.pointee.name))"
                    for method in elements(service.pointee.method, service.pointee.n_method) {
                        let m = method.pointee
                        result["/\(serviceName)/\(String(protoC: m.name))"] =
                            (m.has_client_streaming != 0 && m.client_streaming != 0, m.has_server_streaming != 0 && m.server_streaming != 0)
                    }
                }
            }
        }
        return result
    }
}
