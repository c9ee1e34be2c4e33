// The errors of the Swift layer over protobuf-c: what went wrong decoding a message,
// named so that an RPC layer can turn it into an INVALID_ARGUMENT status.

/// Why PrismProto could not turn bytes into a message.
public enum ProtoError: Error, Equatable, CustomStringConvertible {
    /// The bytes are not a valid serialization of the named message type
    /// (its full protobuf name, e.g. `grpc.testing.SimpleRequest`). Thrown for
    /// truncated or corrupt input; the text is safe to send back to a client.
    case malformed(String)

    public var description: String {
        switch self {
        case .malformed(let typeName):
            return "malformed \(typeName) message"
        }
    }
}
