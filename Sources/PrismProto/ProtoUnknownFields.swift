// Which fields of a decoded message, at any depth, its descriptor does not know: protobuf-c keeps
// them aside as unknown fields. Tests use it to check hand-written encoders against the
// descriptors, and the protobuf fuzz target to spot what protobuf-c keeps but cannot write back.

/// The unknown fields of `message` and of every message below it, as (path, field number) with
/// paths like `.models[0].limits`. Empty when every field is one the descriptors declare.
public func protoUnknownFields(_ message: UnsafePointer<ProtobufCMessage>, path: String = "") -> [(path: String, number: UInt32)] {
    var found = (0..<Int(message.pointee.n_unknown_fields)).map { (path, message.pointee.unknown_fields[$0].tag) }
    let descriptor = message.pointee.descriptor!
    let base = UnsafeRawPointer(message)
    for field in UnsafeBufferPointer(start: descriptor.pointee.fields, count: Int(descriptor.pointee.n_fields))
    where field.type == PROTOBUF_C_TYPE_MESSAGE {
        // A oneof's members share their storage: only the case that is set holds a message.
        if field.flags & UInt32(PROTOBUF_C_FIELD_FLAG_ONEOF.rawValue) != 0,
           base.load(fromByteOffset: Int(field.quantifier_offset), as: UInt32.self) != field.id { continue }
        let name = path + "." + String(cString: field.name)
        if field.label == PROTOBUF_C_LABEL_REPEATED {
            let count = base.load(fromByteOffset: Int(field.quantifier_offset), as: Int.self)
            guard let items = base.load(fromByteOffset: Int(field.offset), as: UnsafePointer<UnsafePointer<ProtobufCMessage>>?.self) else { continue }
            for i in 0..<count { found += protoUnknownFields(items[i], path: "\(name)[\(i)]") }
        } else if let child = base.load(fromByteOffset: Int(field.offset), as: UnsafePointer<ProtobufCMessage>?.self) {
            found += protoUnknownFields(child, path: name)
        }
    }
    return found
}
