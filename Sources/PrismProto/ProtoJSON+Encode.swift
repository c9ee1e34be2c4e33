// JSON to protobuf binary under proto3's JSON mapping, field by field from the ProtoSchema:
// JSON names or proto names, 64-bit integers as strings or numbers, enums by name or number,
// bytes in either base64 alphabet, maps as objects, repeated scalars packed. Every refusal names
// the field's path (`messages[0].parts[1].media.data`).
import Foundation
import PrismJSON

extension ProtoJSON {
    /// The serialized message of `type` (fully qualified) that `json` describes.
    public func binary(fromJSON json: [UInt8], type: String) throws -> [UInt8] {
        let value: JSONValue
        do {
            value = try JSONValue.parse(json)
        } catch {
            throw ProtoJSONError("the body is not JSON: \(error)")
        }
        var out: [UInt8] = []
        try encodeMessage(value, type: type, path: "", into: &out)
        return out
    }

    private func encodeMessage(_ value: JSONValue, type: String, path: String, into out: inout [UInt8]) throws {
        guard let message = schema.messages[type] else { throw ProtoJSONError("\(path): unknown message type \(type)") }
        guard case .object(let members) = value else {
            throw ProtoJSONError("\(path.isEmpty ? type : path): expected a JSON object for \(type)")
        }
        for (key, member) in members {
            let fieldPath = path.isEmpty ? key : "\(path).\(key)"
            guard let field = message.field(jsonName: key) else {
                throw ProtoJSONError("\(fieldPath): \(type) has no field '\(key)'")
            }
            if member.isNull { continue }
            if field.repeated, field.type == .message, let entry = schema.messages[field.typeName], entry.isMapEntry {
                guard case .object(let entries) = member else { throw ProtoJSONError("\(fieldPath): expected a JSON object (a map)") }
                guard let keyField = entry.field(number: 1), let valueField = entry.field(number: 2) else {
                    throw ProtoJSONError("\(fieldPath): map entry \(entry.name) lacks its key or value field")
                }
                for (mapKey, mapValue) in entries {
                    var entryBytes: [UInt8] = []
                    try encodeField(keyField, Self.mapKeyValue(mapKey, keyField), path: "\(fieldPath)[\(mapKey)]", into: &entryBytes)
                    try encodeField(valueField, mapValue, path: "\(fieldPath)[\(mapKey)]", into: &entryBytes)
                    Self.lengthDelimited(field.number, entryBytes, into: &out)
                }
            } else if field.repeated {
                guard case .array(let items) = member else { throw ProtoJSONError("\(fieldPath): expected a JSON array") }
                if field.type.isPacked {
                    guard !items.isEmpty else { continue }
                    var packed: [UInt8] = []
                    for (i, item) in items.enumerated() { try encodeScalar(item, field, path: "\(fieldPath)[\(i)]", into: &packed) }
                    Self.lengthDelimited(field.number, packed, into: &out)
                } else {
                    for (i, item) in items.enumerated() { try encodeField(field, item, path: "\(fieldPath)[\(i)]", into: &out) }
                }
            } else {
                try encodeField(field, member, path: fieldPath, into: &out)
            }
        }
    }

    private func encodeField(_ field: ProtoSchema.Field, _ value: JSONValue, path: String, into out: inout [UInt8]) throws {
        switch field.type {
        case .message:
            var inner: [UInt8] = []
            try encodeMessage(value, type: field.typeName, path: path, into: &inner)
            Self.lengthDelimited(field.number, inner, into: &out)
        case .string:
            guard case .string(let text) = value else { throw ProtoJSONError("\(path): expected a string") }
            Self.lengthDelimited(field.number, Array(text.utf8), into: &out)
        case .bytes:
            guard case .string(let text) = value, let data = Self.base64(text) else {
                throw ProtoJSONError("\(path): expected base64 bytes")
            }
            Self.lengthDelimited(field.number, Array(data), into: &out)
        case .group:
            throw ProtoJSONError("\(path): groups are not supported")
        default:
            Self.varint(UInt64(field.number << 3) | field.type.wireType, into: &out)
            try encodeScalar(value, field, path: path, into: &out)
        }
    }

    /// One numeric, bool or enum value, without its tag.
    private func encodeScalar(_ value: JSONValue, _ field: ProtoSchema.Field, path: String, into out: inout [UInt8]) throws {
        switch field.type {
        case .double:
            Self.fixed(try Self.floating(value, path).bitPattern, into: &out)
        case .float:
            let d = try Self.floating(value, path)
            guard !d.isFinite || abs(d) <= Double(Float.greatestFiniteMagnitude) else {
                throw ProtoJSONError("\(path): \(d) is out of range for a float")
            }
            Self.fixed(Float(d).bitPattern, into: &out)
        case .int32:
            Self.varint(UInt64(bitPattern: Int64(try Self.integer(value, path, in: Int64(Int32.min)...Int64(Int32.max)))), into: &out)
        case .sint32:
            let v = Int32(try Self.integer(value, path, in: Int64(Int32.min)...Int64(Int32.max)))
            Self.varint(UInt64(UInt32(bitPattern: (v << 1) ^ (v >> 31))), into: &out)
        case .sfixed32:
            Self.fixed(UInt32(bitPattern: Int32(try Self.integer(value, path, in: Int64(Int32.min)...Int64(Int32.max)))), into: &out)
        case .uint32:
            Self.varint(UInt64(try Self.unsigned(value, path, max: UInt64(UInt32.max))), into: &out)
        case .fixed32:
            Self.fixed(UInt32(try Self.unsigned(value, path, max: UInt64(UInt32.max))), into: &out)
        case .int64:
            Self.varint(UInt64(bitPattern: try Self.integer(value, path, in: Int64.min...Int64.max)), into: &out)
        case .sint64:
            let v = try Self.integer(value, path, in: Int64.min...Int64.max)
            Self.varint(UInt64(bitPattern: (v << 1) ^ (v >> 63)), into: &out)
        case .sfixed64:
            Self.fixed(UInt64(bitPattern: try Self.integer(value, path, in: Int64.min...Int64.max)), into: &out)
        case .uint64:
            Self.varint(try Self.unsigned(value, path, max: UInt64.max), into: &out)
        case .fixed64:
            Self.fixed(try Self.unsigned(value, path, max: UInt64.max), into: &out)
        case .bool:
            guard case .bool(let b) = value else { throw ProtoJSONError("\(path): expected true or false") }
            Self.varint(b ? 1 : 0, into: &out)
        case .enumeration:
            let number: Int32
            if case .string(let name) = value {
                guard let n = schema.enums[field.typeName]?.number(of: name) else {
                    throw ProtoJSONError("\(path): '\(name)' is not a value of \(field.typeName)")
                }
                number = n
            } else {
                number = Int32(try Self.integer(value, path, in: Int64(Int32.min)...Int64(Int32.max)))
            }
            Self.varint(UInt64(bitPattern: Int64(number)), into: &out)
        case .string, .bytes, .message, .group:
            throw ProtoJSONError("\(path): a \(field.type) cannot be packed")
        }
    }

    // MARK: - JSON values

    private static func floating(_ value: JSONValue, _ path: String) throws -> Double {
        switch value {
        case .number(let d): return d
        case .string("NaN"): return .nan
        case .string("Infinity"): return .infinity
        case .string("-Infinity"): return -.infinity
        case .string(let text):
            if let d = Double(text), d.isFinite { return d }
        default: break
        }
        throw ProtoJSONError("\(path): expected a number")
    }

    private static func integer(_ value: JSONValue, _ path: String, in range: ClosedRange<Int64>) throws -> Int64 {
        let parsed: Int64?
        switch value {
        case .number(let d): parsed = Int64(exactly: d)
        case .string(let text): parsed = Int64(text) ?? Double(text).flatMap { Int64(exactly: $0) }
        default: parsed = nil
        }
        guard let parsed else { throw ProtoJSONError("\(path): expected an integer") }
        guard range.contains(parsed) else { throw ProtoJSONError("\(path): \(parsed) is out of range") }
        return parsed
    }

    private static func unsigned(_ value: JSONValue, _ path: String, max: UInt64) throws -> UInt64 {
        let parsed: UInt64?
        switch value {
        case .number(let d): parsed = UInt64(exactly: d)
        case .string(let text): parsed = UInt64(text) ?? Double(text).flatMap { UInt64(exactly: $0) }
        default: parsed = nil
        }
        guard let parsed else { throw ProtoJSONError("\(path): expected a non-negative integer") }
        guard parsed <= max else { throw ProtoJSONError("\(path): \(parsed) is out of range") }
        return parsed
    }

    /// A map key (always a JSON string) as the value of the entry's key field.
    private static func mapKeyValue(_ key: String, _ field: ProtoSchema.Field) -> JSONValue {
        switch field.type {
        case .string: return .string(key)
        case .bool: return key == "true" ? .bool(true) : key == "false" ? .bool(false) : .string(key)
        default: return .string(key)  // integers parse from strings
        }
    }

    /// Standard or URL-safe base64, padded or not.
    private static func base64(_ text: String) -> Data? {
        var normalized = String(text.map { $0 == "-" ? "+" : $0 == "_" ? "/" : $0 })
        while normalized.utf8.count % 4 != 0 { normalized += "=" }
        return Data(base64Encoded: normalized)
    }

    // MARK: - Wire format

    private static func varint(_ value: UInt64, into out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    /// A little-endian fixed32 or fixed64.
    private static func fixed<T: FixedWidthInteger>(_ value: T, into out: inout [UInt8]) {
        for i in 0..<MemoryLayout<T>.size { out.append(UInt8(truncatingIfNeeded: value >> (8 * i))) }
    }

    private static func lengthDelimited(_ number: Int, _ bytes: [UInt8], into out: inout [UInt8]) {
        varint(UInt64(number << 3 | 2), into: &out)
        varint(UInt64(bytes.count), into: &out)
        out += bytes
    }
}
