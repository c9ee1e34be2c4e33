// The grpc-swift-2 benchmark peer: serves grpc.health.v1.Health/Check and
// grpc.testing.TestService/StreamingOutputCall over h2c, with hand-written message coders so
// that no protoc plugin has to be built. Usage: swift-peer PORT (listens on 127.0.0.1:PORT).
import GRPCCore
import GRPCNIOTransportHTTP2

#if canImport(Glibc)
import Glibc
#endif

/// Reads the request bytes but does not decode them: Health/Check answers every service name
/// alike, so the request's content does not matter to the benchmark.
struct IgnoringDeserializer: MessageDeserializer {
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> Void {}
}

/// HealthCheckResponse{status: SERVING}: field 1 (varint) = 1.
struct ServingSerializer: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: Void) throws -> Bytes {
        Bytes([0x08, 0x01])
    }
}

/// The `size` of each ResponseParameters entry (field 2) of a StreamingOutputCallRequest; every
/// other field is skipped. Enough of the protobuf wire format for the interop semantics.
struct StreamingOutputCallRequestDeserializer: MessageDeserializer {
    struct Malformed: Error {}

    func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> [Int] {
        try bytes.withUnsafeBytes { buffer in
            var reader = WireReader(buffer: buffer)
            var sizes: [Int] = []
            while !reader.atEnd {
                let key = try reader.varint()
                if key == (2 << 3 | 2) {  // response_parameters, length-delimited
                    var entry = WireReader(buffer: try reader.lengthDelimited())
                    var size = 0
                    while !entry.atEnd {
                        let entryKey = try entry.varint()
                        if entryKey == (1 << 3 | 0) { size = Int(truncatingIfNeeded: try entry.varint()) }
                        else { try entry.skip(wireType: entryKey & 7) }
                    }
                    sizes.append(size)
                } else {
                    try reader.skip(wireType: key & 7)
                }
            }
            return sizes
        }
    }

    /// A cursor over protobuf wire-format bytes.
    struct WireReader {
        var buffer: UnsafeRawBufferPointer
        var index = 0
        var atEnd: Bool { index >= buffer.count }

        mutating func varint() throws -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard index < buffer.count, shift < 64 else { throw Malformed() }
                let byte = buffer[index]
                index += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
        }

        mutating func lengthDelimited() throws -> UnsafeRawBufferPointer {
            let length = Int(try varint())
            guard length <= buffer.count - index else { throw Malformed() }
            defer { index += length }
            return UnsafeRawBufferPointer(rebasing: buffer[index..<index + length])
        }

        mutating func skip(wireType: UInt64) throws {
            switch wireType {
            case 0: _ = try varint()
            case 1: index += 8
            case 2: _ = try lengthDelimited()
            case 5: index += 4
            default: throw Malformed()
            }
            guard index <= buffer.count else { throw Malformed() }
        }
    }
}

/// StreamingOutputCallResponse{payload: Payload{body: N zero bytes}}, N being the message.
struct ZeroPayloadSerializer: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ size: Int) throws -> Bytes {
        var out: [UInt8] = []
        out.reserveCapacity(size + 12)
        var payload: [UInt8] = []
        if size > 0 {
            payload.append(0x12)  // Payload.body, length-delimited
            appendVarint(UInt64(size), to: &payload)
        }
        out.append(0x0A)  // StreamingOutputCallResponse.payload, length-delimited
        appendVarint(UInt64(payload.count + size), to: &out)
        out.append(contentsOf: payload)
        out.append(contentsOf: repeatElement(0, count: size))
        return Bytes(out)
    }

    private func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            out.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        out.append(UInt8(value))
    }
}

/// The two methods the benchmark drives, registered straight on the router.
struct BenchService: RegistrableRPCService {
    static let check = MethodDescriptor(
        fullyQualifiedService: "grpc.health.v1.Health", method: "Check", type: .unary)
    static let streamingOutputCall = MethodDescriptor(
        fullyQualifiedService: "grpc.testing.TestService", method: "StreamingOutputCall",
        type: .serverStreaming)

    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        router.registerHandler(
            forMethod: Self.check,
            deserializer: IgnoringDeserializer(),
            serializer: ServingSerializer()
        ) { request, _ in
            for try await _ in request.messages {}
            return StreamingServerResponse(single: ServerResponse(message: ()))
        }
        router.registerHandler(
            forMethod: Self.streamingOutputCall,
            deserializer: StreamingOutputCallRequestDeserializer(),
            serializer: ZeroPayloadSerializer()
        ) { request, _ in
            var requested: [Int] = []
            for try await message in request.messages { requested = message }
            let sizes = requested
            return StreamingServerResponse { writer in
                for size in sizes { try await writer.write(size) }
                return [:]
            }
        }
    }
}

let arguments = CommandLine.arguments
guard arguments.count == 2, let port = Int(arguments[1]) else {
    print("usage: swift-peer PORT")
    exit(2)
}

let server = GRPCServer(
    transport: .http2NIOPosix(
        address: .ipv4(host: "127.0.0.1", port: port),
        transportSecurity: .plaintext
    ),
    services: [BenchService()]
)
try await withThrowingDiscardingTaskGroup { group in
    group.addTask { try await server.serve() }
    if let address = try await server.listeningAddress {
        // Straight to the file descriptor: print() may sit in stdio's buffer when stdout is a file.
        let line = "swift-peer listening on \(address) (h2c)\n"
        _ = line.utf8CString.withUnsafeBufferPointer { write(1, $0.baseAddress, $0.count - 1) }
    }
}
