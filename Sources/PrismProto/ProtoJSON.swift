// ProtoJSON converts any Prism message between the protobuf wire format and proto3's canonical
// JSON mapping, generically from protobuf-c's runtime descriptors (no per-message code): the
// codec Connect+JSON and the web console speak.
import Foundation
import NIOCore
import PrismJSON

/// Why a JSON document could not become a message (or a message JSON). `path` names the
/// offending value the way a client wrote it, e.g. `messages[0].parts[1].media.data`, empty for
/// the document as a whole; the description, "path: reason", is safe to send back as an
/// INVALID_ARGUMENT message.
public struct ProtoJSONError: Error, Equatable, CustomStringConvertible {
    public var path: String
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { path.isEmpty ? reason : "\(path): \(reason)" }
}

/// proto3 canonical JSON for every message type protoc-c generated.
///
/// Encoding writes lowerCamelCase json names, leaves fields at their default out, writes enums
/// by name (a number this build does not know stays a number), 64-bit integers as strings,
/// bytes as padded standard base64, NaN and the infinities as "NaN", "Infinity", "-Infinity",
/// maps as objects with string keys. Decoding also takes the .proto field names, enum numbers,
/// integers as strings or numbers, URL-safe or unpadded base64, and null for "default"; it
/// refuses unknown fields (unless asked to skip them), a field given twice, two members of one
/// oneof, and values of the wrong kind or out of range, each with the JSON path of the value.
public enum ProtoJSON {
    /// The message in `binary` (wire format) of the type `descriptor`, as compact JSON text.
    /// Throws `ProtoError.malformed` when `binary` is not a message of that type.
    public static func encode(_ descriptor: UnsafePointer<ProtobufCMessageDescriptor>, binary: UnsafeRawBufferPointer) throws -> String {
        let data = binary.baseAddress?.assumingMemoryBound(to: UInt8.self)
        guard let message = protobuf_c_message_unpack(descriptor, nil, binary.count, data) else {
            throw ProtoError.malformed(protoTypeName(descriptor))
        }
        defer { protobuf_c_message_free_unpacked(message, nil) }
        return ProtoJSONEncoder(schema: .embedded).object(UnsafeRawPointer(message), descriptor).jsonText
    }

    /// The message in `binary` of the type `descriptor`, as compact JSON text.
    public static func encode(_ descriptor: UnsafePointer<ProtobufCMessageDescriptor>, binary: [UInt8]) throws -> String {
        try binary.withUnsafeBytes { try encode(descriptor, binary: $0) }
    }

    /// The message in the readable bytes of `buffer` (not consumed), as compact JSON text.
    public static func encode(_ descriptor: UnsafePointer<ProtobufCMessageDescriptor>, binary buffer: ByteBuffer) throws -> String {
        try buffer.withUnsafeReadableBytes { try encode(descriptor, binary: $0) }
    }

    /// The JSON document `json` (UTF-8) as a message of the type `descriptor` in wire format.
    /// Throws `ProtoJSONError` naming the offending value's path; a member that is no field of
    /// its message is such an error unless `ignoreUnknownFields` (then it is skipped, and so is
    /// an enum name this build does not know).
    public static func decode(
        _ descriptor: UnsafePointer<ProtobufCMessageDescriptor>, json: UnsafeRawBufferPointer, ignoreUnknownFields: Bool = false
    ) throws -> [UInt8] {
        let builder = ProtoBuilder()
        let decoder = ProtoJSONDecoder(schema: .embedded, ignoreUnknownFields: ignoreUnknownFields, builder: builder)
        do {
            let message = try JSONParser.read(json) { try decoder.message(descriptor, &$0, path: "") }
            return withExtendedLifetime(builder) {
                protoPack(base: message.assumingMemoryBound(to: ProtobufCMessage.self))
            }
        } catch let error as JSONParseError {
            throw ProtoJSONError(path: "", reason: error.description)
        }
    }

    /// The JSON document `json` as a message of the type `descriptor` in wire format.
    public static func decode(
        _ descriptor: UnsafePointer<ProtobufCMessageDescriptor>, json: [UInt8], ignoreUnknownFields: Bool = false
    ) throws -> [UInt8] {
        try json.withUnsafeBytes { try decode(descriptor, json: $0, ignoreUnknownFields: ignoreUnknownFields) }
    }

    /// The JSON document in the readable bytes of `buffer` (not consumed) as wire format.
    public static func decode(
        _ descriptor: UnsafePointer<ProtobufCMessageDescriptor>, json buffer: ByteBuffer, ignoreUnknownFields: Bool = false
    ) throws -> [UInt8] {
        try buffer.withUnsafeReadableBytes { try decode(descriptor, json: $0, ignoreUnknownFields: ignoreUnknownFields) }
    }

    /// Base64 as the mapping allows it in: the standard or the URL-safe alphabet, padded or not.
    static func base64Decoded(_ text: String) -> Data? {
        // Bytes, not Characters: media are megabytes of base64.
        var bytes = Array(text.utf8)
        for index in bytes.indices {
            switch bytes[index] {
            case UInt8(ascii: "-"): bytes[index] = UInt8(ascii: "+")
            case UInt8(ascii: "_"): bytes[index] = UInt8(ascii: "/")
            default: break
            }
        }
        while bytes.last == UInt8(ascii: "=") { bytes.removeLast() }
        switch bytes.count % 4 {
        case 1: return nil
        case 2: bytes += [UInt8(ascii: "="), UInt8(ascii: "=")]
        case 3: bytes.append(UInt8(ascii: "="))
        default: break
        }
        return Data(base64Encoded: Data(bytes))
    }

    /// The .proto spelling of a scalar type, for error messages.
    static func typeName(_ type: ProtobufCType) -> String {
        switch type {
        case PROTOBUF_C_TYPE_INT32: return "int32"
        case PROTOBUF_C_TYPE_SINT32: return "sint32"
        case PROTOBUF_C_TYPE_SFIXED32: return "sfixed32"
        case PROTOBUF_C_TYPE_INT64: return "int64"
        case PROTOBUF_C_TYPE_SINT64: return "sint64"
        case PROTOBUF_C_TYPE_SFIXED64: return "sfixed64"
        case PROTOBUF_C_TYPE_UINT32: return "uint32"
        case PROTOBUF_C_TYPE_FIXED32: return "fixed32"
        case PROTOBUF_C_TYPE_UINT64: return "uint64"
        case PROTOBUF_C_TYPE_FIXED64: return "fixed64"
        case PROTOBUF_C_TYPE_ENUM: return "enum"
        default: return "number"
        }
    }
}
