// proto3's canonical JSON mapping, done generically from a ProtoSchema (no per-message code):
// protobuf binary to JSON and JSON to binary, for Connect's JSON codec. 64-bit integers are
// strings, bytes base64, enums by name; unknown JSON fields are refused naming the field. Not
// covered: the well-known types' special forms (none of Prism's messages use them).
import Foundation
import PrismJSON

/// Why a message could not be converted; the text names the field (`messages[0].role`).
public struct ProtoJSONError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

public struct ProtoJSON: Sendable {
    public let schema: ProtoSchema

    public init(schema: ProtoSchema) {
        self.schema = schema
    }

    // MARK: - Binary → JSON

    /// The JSON text of a serialized message of `type` (fully qualified).
    public func json(fromBinary bytes: [UInt8], type: String) throws -> String {
        try bytes.withUnsafeBytes { try value(ofMessage: $0, type: type, path: type).jsonText }
    }

    private enum WireValue {
        case varint(UInt64)
        case fixed64(UInt64)
        case fixed32(UInt32)
        case bytes(UnsafeRawBufferPointer)
    }

    private func value(ofMessage bytes: UnsafeRawBufferPointer, type: String, path: String) throws -> JSONValue {
        guard let message = schema.messages[type] else { throw ProtoJSONError("\(path): unknown message type \(type)") }
        var values: [Int: [WireValue]] = [:]
        var reader = WireReader(bytes: bytes)
        while !reader.atEnd {
            let key = try reader.varint()
            let number = Int(key >> 3)
            let wire: WireValue
            switch key & 7 {
            case 0: wire = .varint(try reader.varint())
            case 1: wire = .fixed64(try reader.fixed(UInt64.self))
            case 2: wire = .bytes(try reader.lengthDelimited())
            case 5: wire = .fixed32(try reader.fixed(UInt32.self))
            default: throw ProtoJSONError("\(path): unsupported wire type \(key & 7)")
            }
            guard let field = message.field(number: number) else { continue }  // unknown: dropped, as JSON has no place for it
            if case .bytes(let packed) = wire, field.repeated, field.type.isPacked {
                var inner = WireReader(bytes: packed)
                while !inner.atEnd {
                    switch field.type.wireType {
                    case 0: values[number, default: []].append(.varint(try inner.varint()))
                    case 1: values[number, default: []].append(.fixed64(try inner.fixed(UInt64.self)))
                    default: values[number, default: []].append(.fixed32(try inner.fixed(UInt32.self)))
                    }
                }
            } else {
                values[number, default: []].append(wire)
            }
        }
        var members: [(key: String, value: JSONValue)] = []
        for field in message.fields.sorted(by: { $0.number < $1.number }) {
            guard let present = values[field.number], let last = present.last else { continue }
            let fieldPath = "\(path).\(field.jsonName)"
            if field.repeated, field.type == .message, let entry = schema.messages[field.typeName], entry.isMapEntry {
                var object: [(key: String, value: JSONValue)] = []
                for item in present {
                    guard case .bytes(let bytes) = item else { throw ProtoJSONError("\(fieldPath): a map entry is not a message") }
                    let decoded = try value(ofMessage: bytes, type: entry.name, path: fieldPath)
                    guard let keyField = entry.field(number: 1), let valueField = entry.field(number: 2) else {
                        throw ProtoJSONError("\(fieldPath): map entry \(entry.name) lacks its key or value field")
                    }
                    // An entry's default key or value is left out of it on the wire, as anywhere else.
                    let key = Self.mapKey(decoded[keyField.jsonName] ?? defaultValue(keyField))
                    let mapped = decoded[valueField.jsonName] ?? defaultValue(valueField)
                    object.removeAll { $0.key == key }
                    object.append((key, mapped))
                }
                members.append((field.jsonName, .object(object)))
            } else if field.repeated {
                members.append((field.jsonName, .array(try present.map { try value(of: $0, field: field, path: fieldPath) })))
            } else {
                let converted = try value(of: last, field: field, path: fieldPath)
                if !field.tracksPresence && field.type != .message && converted == defaultValue(field) { continue }
                members.append((field.jsonName, converted))
            }
        }
        return .object(members)
    }

    private func value(of wire: WireValue, field: ProtoSchema.Field, path: String) throws -> JSONValue {
        switch (field.type, wire) {
        case (.double, .fixed64(let bits)): return Self.floating(Double(bitPattern: bits))
        case (.float, .fixed32(let bits)):
            let f = Float(bitPattern: bits)
            // The float's own shortest form ("0.1", not 0.10000000149011612).
            return f.isFinite ? .number(Double(f.description) ?? Double(f)) : Self.floating(Double(f))
        case (.int64, .varint(let v)), (.sfixed64, .fixed64(let v)): return .string(String(Int64(bitPattern: v)))
        case (.uint64, .varint(let v)), (.fixed64, .fixed64(let v)): return .string(String(v))
        case (.sint64, .varint(let v)): return .string(String(Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1)))
        case (.int32, .varint(let v)): return .number(Double(Int32(truncatingIfNeeded: v)))
        case (.uint32, .varint(let v)): return .number(Double(UInt32(truncatingIfNeeded: v)))
        case (.sint32, .varint(let v)):
            let u = UInt32(truncatingIfNeeded: v)
            return .number(Double(Int32(bitPattern: u >> 1) ^ -Int32(bitPattern: u & 1)))
        case (.fixed32, .fixed32(let v)): return .number(Double(v))
        case (.sfixed32, .fixed32(let v)): return .number(Double(Int32(bitPattern: v)))
        case (.bool, .varint(let v)): return .bool(v != 0)
        case (.enumeration, .varint(let v)):
            let number = Int32(truncatingIfNeeded: v)
            if let name = schema.enums[field.typeName]?.name(of: number) { return .string(name) }
            return .number(Double(number))
        case (.string, .bytes(let b)): return .string(String(decoding: b, as: UTF8.self))
        case (.bytes, .bytes(let b)): return .string(Data(b).base64EncodedString())
        case (.message, .bytes(let b)): return try value(ofMessage: b, type: field.typeName, path: path)
        default: throw ProtoJSONError("\(path): the wire type does not match the field's type \(field.type)")
        }
    }

    private static func floating(_ d: Double) -> JSONValue {
        if d.isNaN { return .string("NaN") }
        if d.isInfinite { return .string(d < 0 ? "-Infinity" : "Infinity") }
        return .number(d)
    }

    private static func mapKey(_ value: JSONValue) -> String {
        switch value {
        case .string(let s): return s
        case .bool(let b): return b ? "true" : "false"
        case .number(let d): return String(Int64(d))
        default: return ""
        }
    }

    private func defaultValue(_ field: ProtoSchema.Field) -> JSONValue {
        switch field.type {
        case .string, .bytes: return .string("")
        case .bool: return .bool(false)
        case .int64, .uint64, .sint64, .fixed64, .sfixed64: return .string("0")
        case .enumeration: return schema.enums[field.typeName]?.name(of: 0).map(JSONValue.string) ?? .number(0)
        case .message: return .object([])
        default: return .number(0)
        }
    }
}

/// Reads protobuf's wire format from a buffer, refusing truncated input.
struct WireReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    var atEnd: Bool { offset >= bytes.count }

    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while offset < bytes.count, shift < 64 {
            let byte = bytes[offset]
            offset += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
        throw ProtoJSONError("truncated or overlong varint")
    }

    /// A little-endian fixed32 or fixed64.
    mutating func fixed<T: FixedWidthInteger & UnsignedInteger>(_: T.Type) throws -> T {
        let size = MemoryLayout<T>.size
        guard bytes.count - offset >= size else { throw ProtoJSONError("truncated fixed\(size * 8)") }
        var value: T = 0
        for i in 0..<size { value |= T(bytes[offset + i]) << (8 * i) }
        offset += size
        return value
    }

    mutating func lengthDelimited() throws -> UnsafeRawBufferPointer {
        let length = try varint()
        guard length <= UInt64(bytes.count - offset) else { throw ProtoJSONError("truncated length-delimited field") }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + Int(length)])
        offset += Int(length)
        return slice
    }
}

extension ProtoSchema.FieldType {
    /// Numeric scalars, which proto3 packs when repeated.
    var isPacked: Bool { ![.string, .bytes, .message, .group].contains(self) }

    /// The wire type of one value.
    var wireType: UInt64 {
        switch self {
        case .double, .fixed64, .sfixed64: return 1
        case .float, .fixed32, .sfixed32: return 5
        case .string, .bytes, .message, .group: return 2
        default: return 0
        }
    }
}
