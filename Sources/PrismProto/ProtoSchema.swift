// The message types of a FileDescriptorSet as Swift values: fields with their numbers, types,
// JSON names and oneofs, enums by name and number, and each method's input and output types.
// ProtoJSON reads messages through it; built once from the embedded set, immutable after.

/// Every message, enum and method of a descriptor set.
public struct ProtoSchema: Sendable {
    /// `google.protobuf.FieldDescriptorProto.Type`'s numbers.
    public enum FieldType: Int32, Sendable {
        case double = 1, float, int64, uint64, int32, fixed64, fixed32, bool, string, group, message, bytes,
             uint32, enumeration, sfixed32, sfixed64, sint32, sint64
    }

    public struct Field: Sendable {
        public let name: String
        public let jsonName: String
        public let number: Int
        public let type: FieldType
        public let repeated: Bool
        /// For messages and enums: the fully-qualified type name, without the leading dot.
        public let typeName: String
        /// Whether a present default value counts (oneof members, proto3 `optional`).
        public let tracksPresence: Bool
    }

    public struct Message: Sendable {
        public let name: String
        public let fields: [Field]
        /// Map entries (`map<K, V>` fields) have key field 1 and value field 2.
        public let isMapEntry: Bool
        let byNumber: [Int: Int]
        let byJSONName: [String: Int]

        public func field(number: Int) -> Field? { byNumber[number].map { fields[$0] } }
        /// By JSON name or by proto name, as proto3's JSON parsers accept both.
        public func field(jsonName: String) -> Field? { byJSONName[jsonName].map { fields[$0] } }
    }

    public struct Enumeration: Sendable {
        public let name: String
        let names: [Int32: String]
        let numbers: [String: Int32]

        public func name(of number: Int32) -> String? { names[number] }
        public func number(of name: String) -> Int32? { numbers[name] }
    }

    public private(set) var messages: [String: Message] = [:]
    public private(set) var enums: [String: Enumeration] = [:]
    /// `/package.Service/Method` → (input type, output type).
    public private(set) var methods: [String: (input: String, output: String)] = [:]

    /// The schema of the descriptor set tools/gen-proto.sh embeds.
    public static func embedded() throws -> ProtoSchema {
        try ProtoSchema(serializedSet: DescriptorIndex.embeddedSerializedSet)
    }

    public init(serializedSet: [UInt8]) throws {
        let set = try ProtoMessage(google__protobuf__file_descriptor_set__init, bytes: serializedSet)
        withExtendedLifetime(set) {
            for file in elements(set.pointee.file, set.pointee.n_file) {
                let package = String(protoC: file.pointee.package)
                let scope = package.isEmpty ? "" : package + "."
                for message in elements(file.pointee.message_type, file.pointee.n_message_type) {
                    add(message, scope: scope)
                }
                for enumeration in elements(file.pointee.enum_type, file.pointee.n_enum_type) {
                    add(enumeration, scope: scope)
                }
                for service in elements(file.pointee.service, file.pointee.n_service) {
                    let serviceName = scope + String(protoC: service.pointee.name)
                    for method in elements(service.pointee.method, service.pointee.n_method) {
                        methods["/\(serviceName)/\(String(protoC: method.pointee.name))"] =
                            (Self.unqualified(method.pointee.input_type), Self.unqualified(method.pointee.output_type))
                    }
                }
            }
        }
    }

    private mutating func add(_ message: UnsafeMutablePointer<Google__Protobuf__DescriptorProto>, scope: String) {
        let name = scope + String(protoC: message.pointee.name)
        var fields: [Field] = []
        for f in elements(message.pointee.field, message.pointee.n_field) {
            let p = f.pointee
            guard let type = FieldType(rawValue: Int32(p.type.rawValue)) else { continue }
            let fieldName = String(protoC: p.name)
            let json = p.json_name == nil ? fieldName : String(protoC: p.json_name)
            fields.append(Field(name: fieldName, jsonName: json, number: Int(p.number), type: type,
                                repeated: p.label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED,
                                typeName: Self.unqualified(p.type_name),
                                tracksPresence: p.has_oneof_index != 0 || (p.has_proto3_optional != 0 && p.proto3_optional != 0)))
        }
        var byJSONName: [String: Int] = [:]
        for (i, field) in fields.enumerated() {
            byJSONName[field.name] = i
            byJSONName[field.jsonName] = i
        }
        let mapEntry = message.pointee.options.map { $0.pointee.has_map_entry != 0 && $0.pointee.map_entry != 0 } ?? false
        messages[name] = Message(name: name, fields: fields, isMapEntry: mapEntry,
                                 byNumber: Dictionary(fields.enumerated().map { ($1.number, $0) }, uniquingKeysWith: { a, _ in a }),
                                 byJSONName: byJSONName)
        for nested in elements(message.pointee.nested_type, message.pointee.n_nested_type) {
            add(nested, scope: name + ".")
        }
        for enumeration in elements(message.pointee.enum_type, message.pointee.n_enum_type) {
            add(enumeration, scope: name + ".")
        }
    }

    private mutating func add(_ enumeration: UnsafeMutablePointer<Google__Protobuf__EnumDescriptorProto>, scope: String) {
        let name = scope + String(protoC: enumeration.pointee.name)
        var names: [Int32: String] = [:]
        var numbers: [String: Int32] = [:]
        for value in elements(enumeration.pointee.value, enumeration.pointee.n_value) {
            let valueName = String(protoC: value.pointee.name)
            if names[value.pointee.number] == nil { names[value.pointee.number] = valueName }  // aliases: the first name
            numbers[valueName] = value.pointee.number
        }
        enums[name] = Enumeration(name: name, names: names, numbers: numbers)
    }

    private static func unqualified(_ name: UnsafeMutablePointer<CChar>?) -> String {
        let text = String(protoC: name)
        return text.hasPrefix(".") ? String(text.dropFirst()) : text
    }
}
