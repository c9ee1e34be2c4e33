// The reading half of ProtoJSON: walks a JSON document with PrismJSON's JSONParser and fills
// protobuf-c message structs through their runtime descriptors, in a ProtoBuilder arena.
import Foundation
import PrismJSON

/// Builds protobuf-c messages from proto3 JSON; see `ProtoJSON.decode`. Errors name the JSON
/// path of the offending value, e.g. `messages[0].parts[1].media.data`.
struct ProtoJSONDecoder {
    let schema: ProtoJSONSchema
    let ignoreUnknownFields: Bool
    let builder: ProtoBuilder

    /// One decoded value, before it is stored in a field or a repeated field's array.
    private enum Value {
        case int32(Int32), uint32(UInt32), int64(Int64), uint64(UInt64)
        case float(Float), double(Double), bool(Bool)
        case string(UnsafeMutablePointer<CChar>), bytes(ProtobufCBinaryData), message(UnsafeMutableRawPointer)

        func store(at member: UnsafeMutableRawPointer) {
            switch self {
            case .int32(let v): member.storeBytes(of: v, as: Int32.self)
            case .uint32(let v): member.storeBytes(of: v, as: UInt32.self)
            case .int64(let v): member.storeBytes(of: v, as: Int64.self)
            case .uint64(let v): member.storeBytes(of: v, as: UInt64.self)
            case .float(let v): member.storeBytes(of: v, as: Float.self)
            case .double(let v): member.storeBytes(of: v, as: Double.self)
            case .bool(let v): member.storeBytes(of: v ? 1 : 0, as: Int32.self)
            case .string(let v): member.storeBytes(of: v, as: UnsafeMutablePointer<CChar>.self)
            case .bytes(let v): member.storeBytes(of: v, as: ProtobufCBinaryData.self)
            case .message(let v): member.storeBytes(of: v, as: UnsafeMutableRawPointer.self)
            }
        }
    }

    /// An enum name this build does not know, which `ignoreUnknownFields` lets through as unset.
    private struct UnknownEnumName: Error {
        var error: ProtoJSONError
    }

    private func fail(_ path: String, _ reason: String) -> ProtoJSONError {
        ProtoJSONError(path: path, reason: reason)
    }

    /// Reads the next value, a JSON object, as a new message of the type `descriptor`.
    func message(_ descriptor: UnsafePointer<ProtobufCMessageDescriptor>, _ parser: inout JSONParser, path: String) throws -> UnsafeMutableRawPointer {
        guard parser.nextKind == .object else {
            throw fail(path, "expected a JSON object (\(protoTypeName(descriptor)))")
        }
        let message = builder.message(descriptor: descriptor)
        let names = schema.message(descriptor)
        var seen: Set<UInt32> = []
        // A oneof is named by where protobuf-c keeps its case; the value is the member set.
        var oneofs: [UInt32: String] = [:]
        try parser.readObject { key, parser in
            let name = key.string
            let fieldPath = path.isEmpty ? name : "\(path).\(name)"
            guard let field = schema.field(named: name, in: descriptor, names) else {
                if ignoreUnknownFields { return }
                throw fail(fieldPath, "unknown field: \(protoTypeName(descriptor)) has no field \"\(name)\"")
            }
            guard seen.insert(field.pointee.id).inserted else {
                throw fail(fieldPath, "field \(String(cString: field.pointee.name)) is given more than once")
            }
            // null means the default, i.e. unset, for every field (no google.protobuf.Value here).
            if parser.nextKind == .null {
                return
            }
            if field.pointee.isOneofMember {
                let oneof = field.pointee.quantifier_offset
                if let other = oneofs[oneof] {
                    throw fail(fieldPath, "\(name) and \(other) are members of one oneof; at most one may be set")
                }
                oneofs[oneof] = name
            }
            try self.field(field, of: message, &parser, path: fieldPath)
        }
        return message
    }

    /// Reads the next value into `field` of `message`.
    private func field(_ field: UnsafePointer<ProtobufCFieldDescriptor>, of message: UnsafeMutableRawPointer, _ parser: inout JSONParser, path: String) throws {
        let f = field.pointee
        let member = message + Int(f.offset)
        if f.label == PROTOBUF_C_LABEL_REPEATED {
            let values = schema.isMap(field) ? try mapEntries(field, &parser, path: path) : try list(field, &parser, path: path)
            let array = builder.zeroed(count: values.count, size: f.valueSize)
            for (index, value) in values.enumerated() {
                value.store(at: array! + index * f.valueSize)
            }
            member.storeBytes(of: array, as: UnsafeMutableRawPointer?.self)
            message.storeBytes(of: values.count, toByteOffset: Int(f.quantifier_offset), as: Int.self)
            return
        }
        guard let value = try scalarOrMessage(field, &parser, path: path) else {
            return  // an unknown enum name, ignored on request
        }
        value.store(at: member)
        if f.isOneofMember {
            message.storeBytes(of: f.id, toByteOffset: Int(f.quantifier_offset), as: UInt32.self)
        } else if f.label == PROTOBUF_C_LABEL_OPTIONAL, f.type != PROTOBUF_C_TYPE_STRING, f.type != PROTOBUF_C_TYPE_MESSAGE {
            message.storeBytes(of: 1, toByteOffset: Int(f.quantifier_offset), as: Int32.self)
        }
    }

    /// A repeated field: a JSON array, no element null.
    private func list(_ field: UnsafePointer<ProtobufCFieldDescriptor>, _ parser: inout JSONParser, path: String) throws -> [Value] {
        guard parser.nextKind == .array else {
            throw fail(path, "expected a JSON array (a repeated field)")
        }
        var values: [Value] = []
        try parser.readArray { parser in
            let elementPath = "\(path)[\(values.count)]"
            guard parser.nextKind != .null else {
                throw fail(elementPath, "null is not allowed as an element of a repeated field")
            }
            if let value = try scalarOrMessage(field, &parser, path: elementPath) {
                values.append(value)
            }
        }
        return values
    }

    /// A map field: a JSON object whose keys are the map's keys written as strings.
    private func mapEntries(_ field: UnsafePointer<ProtobufCFieldDescriptor>, _ parser: inout JSONParser, path: String) throws -> [Value] {
        let entry = field.pointee.messageDescriptor
        guard parser.nextKind == .object else {
            throw fail(path, "expected a JSON object (a map)")
        }
        guard let keyField = protobuf_c_message_descriptor_get_field(entry, 1),
              let valueField = protobuf_c_message_descriptor_get_field(entry, 2) else {
            throw fail(path, "\(protoTypeName(entry)) is not a map entry")
        }
        var values: [Value] = []
        var keys: Set<String> = []
        try parser.readObject { key, parser in
            let text = key.string
            let entryPath = "\(path)[\(JSONValue.string(text).jsonText)]"
            guard keys.insert(text).inserted else {
                throw fail(entryPath, "map key given more than once")
            }
            guard parser.nextKind != .null else {
                throw fail(entryPath, "a map value cannot be null")
            }
            let pair = builder.message(descriptor: entry)
            try mapKey(keyField, text, path: entryPath).store(at: pair + Int(keyField.pointee.offset))
            guard let value = try scalarOrMessage(valueField, &parser, path: entryPath) else {
                return
            }
            value.store(at: pair + Int(valueField.pointee.offset))
            values.append(.message(pair))
        }
        return values
    }

    /// A map key from its JSON string form: the text itself, a decimal integer, or true/false.
    private func mapKey(_ field: UnsafePointer<ProtobufCFieldDescriptor>, _ text: String, path: String) throws -> Value {
        switch field.pointee.type {
        case PROTOBUF_C_TYPE_STRING:
            return try string(text, path: path)
        case PROTOBUF_C_TYPE_BOOL:
            guard text == "true" || text == "false" else {
                throw fail(path, "a bool map key must be \"true\" or \"false\"")
            }
            return .bool(text == "true")
        default:
            return try integer(field, text, path: path)
        }
    }

    /// The next value as one value of the field's type; nil for an enum name this build does not
    /// know when unknown fields are ignored.
    private func scalarOrMessage(_ field: UnsafePointer<ProtobufCFieldDescriptor>, _ parser: inout JSONParser, path: String) throws -> Value? {
        let kind = parser.nextKind
        switch field.pointee.type {
        case PROTOBUF_C_TYPE_MESSAGE:
            return .message(try message(field.pointee.messageDescriptor, &parser, path: path))
        case PROTOBUF_C_TYPE_STRING:
            guard let text = try parser.readString() else { throw fail(path, "expected a string") }
            return try string(text, path: path)
        case PROTOBUF_C_TYPE_BYTES:
            guard let text = try parser.readString() else { throw fail(path, "expected a base64 string") }
            guard let data = ProtoJSON.base64Decoded(text) else { throw fail(path, "not base64") }
            return .bytes(builder.bytes(Array(data)))
        case PROTOBUF_C_TYPE_BOOL:
            guard kind == .bool, case .bool(let flag) = try parser.readValue() else {
                throw fail(path, "expected true or false")
            }
            return .bool(flag)
        case PROTOBUF_C_TYPE_ENUM:
            do {
                return try enumValue(field, &parser, path: path)
            } catch let unknown as UnknownEnumName {
                if ignoreUnknownFields { return nil }
                throw unknown.error
            }
        case PROTOBUF_C_TYPE_FLOAT, PROTOBUF_C_TYPE_DOUBLE:
            return try floatingPoint(field, &parser, path: path)
        default:
            // Integers: JSON numbers, or strings holding them (64-bit ones are written so).
            let text: String?
            switch kind {
            case .number: text = try parser.readNumberText()
            case .string: text = try parser.readString()
            default: text = nil
            }
            guard let text else { throw fail(path, "expected an integer (a number or a string)") }
            return try integer(field, text, path: path)
        }
    }

    /// A string field's value; protobuf-c strings are C strings, so NUL cannot be carried.
    private func string(_ text: String, path: String) throws -> Value {
        guard !text.utf8.contains(0) else {
            throw fail(path, "a string with a NUL character (\\u0000) cannot be carried")
        }
        return .string(builder.string(text))
    }

    /// An enum value: its name, or its number as a JSON number or a string. Unknown numbers are
    /// kept (proto3 enums are open); unknown names are an error unless unknown fields are ignored.
    private func enumValue(_ field: UnsafePointer<ProtobufCFieldDescriptor>, _ parser: inout JSONParser, path: String) throws -> Value {
        let descriptor = field.pointee.enumDescriptor
        let typeName = String(cString: descriptor.pointee.name)
        switch parser.nextKind {
        case .string:
            let name = try parser.readString() ?? ""
            if let value = name.withCString({ protobuf_c_enum_descriptor_get_value_by_name(descriptor, $0) }) {
                return .int32(Int32(value.pointee.value))
            }
            if let number = Int32(name) {
                return .int32(number)
            }
            throw UnknownEnumName(error: fail(path, "\"\(name)\" is not a value of \(typeName)"))
        case .number:
            let text = try parser.readNumberText() ?? ""
            guard let number = Int32(text) ?? Double(text).flatMap({ Int32(exactly: $0) }) else {
                throw fail(path, "\(text) is not an enum number of \(typeName)")
            }
            return .int32(number)
        default:
            throw fail(path, "expected an enum name of \(typeName) or its number")
        }
    }

    /// A float or double: a JSON number, "NaN", "Infinity", "-Infinity", or a number in a string.
    private func floatingPoint(_ field: UnsafePointer<ProtobufCFieldDescriptor>, _ parser: inout JSONParser, path: String) throws -> Value {
        let value: Double
        switch parser.nextKind {
        case .number:
            let text = try parser.readNumberText() ?? ""
            guard let number = Double(text) else { throw fail(path, "\(text) is not a number") }
            value = number
        case .string:
            let text = try parser.readString() ?? ""
            switch text {
            case "NaN": value = .nan
            case "Infinity": value = .infinity
            case "-Infinity": value = -.infinity
            default:
                // Only decimal numbers: Double(_:) alone would also take "inf", "nan", hex floats.
                guard !text.isEmpty, text.allSatisfy({ "0123456789+-.eE".contains($0) }), let number = Double(text), number.isFinite else {
                    throw fail(path, "\"\(text)\" is not a number (NaN, Infinity and -Infinity are written so)")
                }
                value = number
            }
        default:
            throw fail(path, "expected a number")
        }
        guard field.pointee.type == PROTOBUF_C_TYPE_FLOAT else {
            return .double(value)
        }
        // In range when it rounds to a finite float: the encoder writes the largest float as
        // 3.4028235e+38, a little above it as a Double (found by the protobuf fuzz target).
        guard !value.isFinite || Float(value).isFinite else {
            throw fail(path, "\(value) is out of range for a float")
        }
        return .float(Float(value))
    }

    /// An integer of the field's type from its decimal text, which may also be an integral
    /// number in exponent or fraction form ("1e3", "5.0"); out of range is an error.
    private func integer(_ field: UnsafePointer<ProtobufCFieldDescriptor>, _ text: String, path: String) throws -> Value {
        let type = field.pointee.type
        let signed = [PROTOBUF_C_TYPE_INT32, PROTOBUF_C_TYPE_SINT32, PROTOBUF_C_TYPE_SFIXED32,
                      PROTOBUF_C_TYPE_INT64, PROTOBUF_C_TYPE_SINT64, PROTOBUF_C_TYPE_SFIXED64, PROTOBUF_C_TYPE_ENUM].contains(type)
        let wide = field.pointee.valueSize == 8
        let exact = !text.contains { ".eE".contains($0) }
        let decimal = exact ? text : Double(text).flatMap { $0.isFinite && $0.rounded() == $0 ? String(format: "%.0f", $0) : nil }
        let digits = decimal.map { $0.hasPrefix("-") || $0.hasPrefix("+") ? $0.dropFirst() : Substring($0) }
        guard let decimal, let digits, !digits.isEmpty, digits.allSatisfy({ "0123456789".contains($0) }) else {
            throw fail(path, "\"\(text)\" is not an integer")
        }
        let outOfRange = fail(path, "\(text) is out of range for a \(ProtoJSON.typeName(type))")
        switch (signed, wide) {
        case (true, true):
            guard let v = Int64(decimal) else { throw outOfRange }
            return .int64(v)
        case (false, true):
            guard let v = UInt64(decimal) else { throw outOfRange }
            return .uint64(v)
        case (true, false):
            guard let v = Int32(decimal) else { throw outOfRange }
            return .int32(v)
        case (false, false):
            guard let v = UInt32(decimal) else { throw outOfRange }
            return .uint32(v)
        }
    }
}
