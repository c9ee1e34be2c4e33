// What proto3's JSON mapping needs beyond protobuf-c's runtime descriptors: each field's
// json_name and which messages are map entries, read once from the embedded FileDescriptorSet.

/// JSON names and map entries of every message in a FileDescriptorSet, by full message name.
///
/// protobuf-c's descriptors carry field names, numbers, types and layout but neither the
/// `json_name` protoc computed (or the .proto set) nor the `map_entry` option, so the JSON codec
/// takes those from the descriptor set. A type missing from the set still works: its JSON
/// names are computed as protoc does and none of its fields is treated as a map.
struct ProtoJSONSchema: Sendable {
    struct Message: Sendable {
        /// Field number to json_name.
        var jsonNames: [UInt32: String] = [:]
        /// json_name to field number, for decoding.
        var numbersByJSONName: [String: UInt32] = [:]
        var isMapEntry = false
    }

    private let messages: [String: Message]

    /// The schema of Prism's own protos; empty (computed names, no maps) only if the embedded
    /// set were corrupt, which DescriptorIndexTests rule out.
    static let embedded: ProtoJSONSchema = (try? ProtoJSONSchema(serializedSet: DescriptorIndex.embeddedSerializedSet)) ?? ProtoJSONSchema(messages: [:])

    private init(messages: [String: Message]) {
        self.messages = messages
    }

    /// Reads a serialized FileDescriptorSet; throws `ProtoError.malformed` if it is not one.
    init(serializedSet: [UInt8]) throws {
        let set = try ProtoMessage(google__protobuf__file_descriptor_set__init, bytes: serializedSet)
        var messages: [String: Message] = [:]
        withExtendedLifetime(set) {
            for file in elements(set.pointee.file, set.pointee.n_file) {
                let package = String(protoC: file.pointee.package)
                for message in elements(file.pointee.message_type, file.pointee.n_message_type) {
                    Self.add(message, scope: package, to: &messages)
                }
            }
        }
        self.messages = messages
    }

    private static func add(
        _ message: UnsafeMutablePointer<Google__Protobuf__DescriptorProto>,
        scope: String,
        to messages: inout [String: Message]
    ) {
        let name = scope.isEmpty ? String(protoC: message.pointee.name) : "\(scope).\(String(protoC: message.pointee.name))"
        var entry = Message()
        entry.isMapEntry = message.pointee.options.map { $0.pointee.has_map_entry != 0 && $0.pointee.map_entry != 0 } ?? false
        for field in elements(message.pointee.field, message.pointee.n_field) {
            let number = UInt32(bitPattern: field.pointee.number)
            let jsonName = field.pointee.json_name.map { String(cString: $0) } ?? defaultJSONName(String(protoC: field.pointee.name))
            entry.jsonNames[number] = jsonName
            entry.numbersByJSONName[jsonName] = number
        }
        messages[name] = entry
        for nested in elements(message.pointee.nested_type, message.pointee.n_nested_type) {
            add(nested, scope: name, to: &messages)
        }
    }

    /// What the set says of the message type `descriptor`; look it up once per message.
    func message(_ descriptor: UnsafePointer<ProtobufCMessageDescriptor>) -> Message? {
        messages[protoTypeName(descriptor)]
    }

    /// The JSON name of `field`, of a message type described by `message` (nil: not in the set).
    func jsonName(_ field: UnsafePointer<ProtobufCFieldDescriptor>, _ message: Message?) -> String {
        message?.jsonNames[field.pointee.id] ?? Self.defaultJSONName(String(protoC: field.pointee.name))
    }

    /// The field of `descriptor` (described by `message`) that a JSON member named `name` sets:
    /// by json_name first, then by the field's name in the .proto, as the mapping requires.
    func field(
        named name: String, in descriptor: UnsafePointer<ProtobufCMessageDescriptor>, _ message: Message?
    ) -> UnsafePointer<ProtobufCFieldDescriptor>? {
        if let number = message?.numbersByJSONName[name] {
            return protobuf_c_message_descriptor_get_field(descriptor, number)
        }
        if let field = name.withCString({ protobuf_c_message_descriptor_get_field_by_name(descriptor, $0) }) {
            return field
        }
        // A type outside the set: its json names are the computed ones.
        guard message == nil else { return nil }
        return fields(of: descriptor).first { Self.defaultJSONName(String(protoC: $0.pointee.name)) == name }
    }

    /// Whether `field` is a map: a repeated field of a message type marked `map_entry`.
    func isMap(_ field: UnsafePointer<ProtobufCFieldDescriptor>) -> Bool {
        guard field.pointee.label == PROTOBUF_C_LABEL_REPEATED, field.pointee.type == PROTOBUF_C_TYPE_MESSAGE,
              let entry = field.pointee.descriptor?.assumingMemoryBound(to: ProtobufCMessageDescriptor.self) else {
            return false
        }
        return messages[protoTypeName(entry)]?.isMapEntry ?? false
    }

    /// protoc's default json_name: underscores dropped, the letter after each one upper-cased.
    static func defaultJSONName(_ name: String) -> String {
        var result = ""
        var upperNext = false
        for character in name {
            if character == "_" {
                upperNext = true
            } else if upperNext {
                result += character.uppercased()
                upperNext = false
            } else {
                result.append(character)
            }
        }
        return result
    }
}

/// The fields of a message type, in the order protoc-c lists them (by number).
func fields(of descriptor: UnsafePointer<ProtobufCMessageDescriptor>) -> [UnsafePointer<ProtobufCFieldDescriptor>] {
    (0..<Int(descriptor.pointee.n_fields)).map { descriptor.pointee.fields + $0 }
}

extension ProtobufCFieldDescriptor {
    var isOneofMember: Bool { flags & UInt32(PROTOBUF_C_FIELD_FLAG_ONEOF.rawValue) != 0 }

    /// The message type of a message field.
    var messageDescriptor: UnsafePointer<ProtobufCMessageDescriptor> {
        descriptor!.assumingMemoryBound(to: ProtobufCMessageDescriptor.self)
    }

    /// The enum type of an enum field.
    var enumDescriptor: UnsafePointer<ProtobufCEnumDescriptor> {
        descriptor!.assumingMemoryBound(to: ProtobufCEnumDescriptor.self)
    }

    /// The size of one value of the field's type in a protobuf-c struct or repeated array.
    var valueSize: Int {
        switch type {
        case PROTOBUF_C_TYPE_INT64, PROTOBUF_C_TYPE_SINT64, PROTOBUF_C_TYPE_SFIXED64,
             PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_TYPE_DOUBLE:
            return 8
        case PROTOBUF_C_TYPE_STRING, PROTOBUF_C_TYPE_MESSAGE:
            return MemoryLayout<UnsafeRawPointer>.size
        case PROTOBUF_C_TYPE_BYTES:
            return MemoryLayout<ProtobufCBinaryData>.stride
        default:
            // 32-bit numbers, floats, enums (protobuf-c forces int size) and protobuf_c_boolean.
            return 4
        }
    }
}
