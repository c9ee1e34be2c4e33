// The writing half of ProtoJSON: walks a message protobuf-c has unpacked, field by field
// through its runtime descriptor, and builds proto3's canonical JSON form as a JSONValue.
import Foundation
import PrismJSON

/// Turns unpacked protobuf-c messages into JSON values; see `ProtoJSON.encode`.
struct ProtoJSONEncoder {
    let schema: ProtoJSONSchema

    /// The JSON object of the message at `message`, of the type `descriptor`: fields in number
    /// order, each under its json_name, fields at their default left out (proto3 has no
    /// presence for them), oneof members and sub-messages written whenever they are set.
    func object(_ message: UnsafeRawPointer, _ descriptor: UnsafePointer<ProtobufCMessageDescriptor>) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = []
        let names = schema.message(descriptor)
        for field in fields(of: descriptor) {
            if let value = self.value(of: field, in: message) {
                members.append((schema.jsonName(field, names), value))
            }
        }
        return .object(members)
    }

    /// The JSON value of one field, nil when the field is not written.
    private func value(of field: UnsafePointer<ProtobufCFieldDescriptor>, in message: UnsafeRawPointer) -> JSONValue? {
        let f = field.pointee
        let member = message + Int(f.offset)
        switch f.label {
        case PROTOBUF_C_LABEL_REPEATED:
            let count = message.load(fromByteOffset: Int(f.quantifier_offset), as: Int.self)
            guard count > 0, let array = member.load(as: UnsafeRawPointer?.self) else {
                return nil
            }
            if schema.isMap(field) {
                return mapObject(entries: array, count: count, entry: f.messageDescriptor)
            }
            return .array((0..<count).map { scalarOrMessage(field, at: array + $0 * f.valueSize) })
        case _ where f.isOneofMember:
            let chosen = message.load(fromByteOffset: Int(f.quantifier_offset), as: UInt32.self)
            return chosen == f.id ? scalarOrMessage(field, at: member) : nil
        case PROTOBUF_C_LABEL_OPTIONAL:
            // proto2 presence: a pointer for strings and messages (protobuf-c also treats the
            // default string as unset), a has_ flag for the rest.
            if f.type == PROTOBUF_C_TYPE_STRING || f.type == PROTOBUF_C_TYPE_MESSAGE {
                let pointer = member.load(as: UnsafeRawPointer?.self)
                return pointer == nil || pointer == f.default_value ? nil : scalarOrMessage(field, at: member)
            }
            let has = message.load(fromByteOffset: Int(f.quantifier_offset), as: Int32.self)
            return has != 0 ? scalarOrMessage(field, at: member) : nil
        case PROTOBUF_C_LABEL_REQUIRED:
            return scalarOrMessage(field, at: member)
        default:
            // proto3 implicit presence: written unless it holds the default.
            return isDefault(field, at: member) ? nil : scalarOrMessage(field, at: member)
        }
    }

    /// Whether a proto3 field without presence holds its default, exactly when protobuf-c
    /// would leave it out of the wire format.
    private func isDefault(_ field: UnsafePointer<ProtobufCFieldDescriptor>, at member: UnsafeRawPointer) -> Bool {
        switch field.pointee.type {
        case PROTOBUF_C_TYPE_STRING:
            guard let string = member.load(as: UnsafePointer<CChar>?.self) else { return true }
            return string.pointee == 0
        case PROTOBUF_C_TYPE_MESSAGE:
            return member.load(as: UnsafeRawPointer?.self) == nil
        case PROTOBUF_C_TYPE_BYTES:
            return member.load(as: ProtobufCBinaryData.self).len == 0
        case PROTOBUF_C_TYPE_FLOAT:
            return member.load(as: Float.self) == 0
        case PROTOBUF_C_TYPE_DOUBLE:
            return member.load(as: Double.self) == 0
        default:
            return field.pointee.valueSize == 8 ? member.load(as: UInt64.self) == 0 : member.load(as: UInt32.self) == 0
        }
    }

    /// A map field as a JSON object: keys as strings; when the wire repeats a key, the last
    /// entry wins, as protobuf parsers do.
    private func mapObject(entries: UnsafeRawPointer, count: Int, entry: UnsafePointer<ProtobufCMessageDescriptor>) -> JSONValue {
        guard let keyField = protobuf_c_message_descriptor_get_field(entry, 1),
              let valueField = protobuf_c_message_descriptor_get_field(entry, 2) else {
            return .object([])
        }
        var members: [(key: String, value: JSONValue)] = []
        var positions: [String: Int] = [:]
        for index in 0..<count {
            guard let pair = entries.load(fromByteOffset: index * MemoryLayout<UnsafeRawPointer>.size, as: UnsafeRawPointer?.self) else {
                continue
            }
            let key: String
            switch scalarOrMessage(keyField, at: pair + Int(keyField.pointee.offset)) {
            case .string(let text): key = text
            case .bool(let flag): key = flag ? "true" : "false"
            case .number(let number): key = String(Int64(number))
            default: continue
            }
            let value = scalarOrMessage(valueField, at: pair + Int(valueField.pointee.offset))
            if let position = positions[key] {
                members[position].value = value
            } else {
                positions[key] = members.count
                members.append((key, value))
            }
        }
        return .object(members)
    }

    /// One value of the field's type stored at `member`.
    func scalarOrMessage(_ field: UnsafePointer<ProtobufCFieldDescriptor>, at member: UnsafeRawPointer) -> JSONValue {
        switch field.pointee.type {
        case PROTOBUF_C_TYPE_INT32, PROTOBUF_C_TYPE_SINT32, PROTOBUF_C_TYPE_SFIXED32:
            return .number(Double(member.load(as: Int32.self)))
        case PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_TYPE_FIXED32:
            return .number(Double(member.load(as: UInt32.self)))
        case PROTOBUF_C_TYPE_INT64, PROTOBUF_C_TYPE_SINT64, PROTOBUF_C_TYPE_SFIXED64:
            // 64-bit integers are strings: JavaScript numbers stop being exact at 2^53.
            return .string(String(member.load(as: Int64.self)))
        case PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_TYPE_FIXED64:
            return .string(String(member.load(as: UInt64.self)))
        case PROTOBUF_C_TYPE_FLOAT:
            let value = member.load(as: Float.self)
            // The shortest decimal that reads back as the same float ("0.1", not 0.100000001…).
            return value.isFinite ? .number(Double(value.description) ?? Double(value)) : Self.special(Double(value))
        case PROTOBUF_C_TYPE_DOUBLE:
            let value = member.load(as: Double.self)
            return value.isFinite ? .number(value) : Self.special(value)
        case PROTOBUF_C_TYPE_BOOL:
            return .bool(member.load(as: Int32.self) != 0)
        case PROTOBUF_C_TYPE_ENUM:
            let number = member.load(as: Int32.self)
            // A number this build does not know (a newer peer's value) stays a number.
            guard let value = protobuf_c_enum_descriptor_get_value(field.pointee.enumDescriptor, number) else {
                return .number(Double(number))
            }
            return .string(String(cString: value.pointee.name))
        case PROTOBUF_C_TYPE_STRING:
            return .string(String(protoC: member.load(as: UnsafePointer<CChar>?.self)))
        case PROTOBUF_C_TYPE_BYTES:
            let data = member.load(as: ProtobufCBinaryData.self)
            guard let bytes = data.data, data.len > 0 else { return .string("") }
            return .string(Data(bytes: bytes, count: data.len).base64EncodedString())
        default:
            guard let sub = member.load(as: UnsafeRawPointer?.self) else { return .object([]) }
            return object(sub, field.pointee.messageDescriptor)
        }
    }

    /// NaN and the infinities, which JSON numbers cannot hold, as the mapping's strings.
    private static func special(_ value: Double) -> JSONValue {
        value.isNaN ? .string("NaN") : .string(value < 0 ? "-Infinity" : "Infinity")
    }
}
