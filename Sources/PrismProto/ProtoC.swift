// Small conversions between protobuf-c's C representations (strings, bytes, descriptors)
// and Swift values, shared by ProtoMessage, ProtoBuilder and DescriptorIndex.

/// The `<message>__init` function protoc-c generates for each message type, e.g.
/// `grpc__testing__simple_request__init`. PrismProto takes it wherever a message type
/// is needed: it names the Swift struct type and leads to the message's descriptor,
/// which Swift cannot take the address of directly (imported C constants are `let`s).
public typealias ProtoInitializer<Message> = (UnsafeMutablePointer<Message>?) -> Void

/// The descriptor of the message type whose generated init function is `initializer`.
///
/// Use it when an API wants a descriptor pointer, e.g. to compare against the input type
/// of a method in a `ProtobufCServiceDescriptor`.
public func protoDescriptor<Message>(
    _ initializer: ProtoInitializer<Message>
) -> UnsafePointer<ProtobufCMessageDescriptor> {
    // Initialise a scratch message and read the descriptor pointer the init function stored
    // in its header; init functions allocate nothing, so there is nothing to free.
    let scratch = UnsafeMutablePointer<Message>.allocate(capacity: 1)
    defer { scratch.deallocate() }
    UnsafeMutableRawPointer(scratch).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<Message>.size)
    initializer(scratch)
    return protoBase(scratch).pointee.descriptor
}

/// The full protobuf name of a message type, e.g. `prism.v1.GenerateRequest`.
public func protoTypeName(_ descriptor: UnsafePointer<ProtobufCMessageDescriptor>) -> String {
    String(protoC: descriptor.pointee.name)
}

/// The `ProtobufCMessage` header every protoc-c message struct starts with.
@inline(__always)
func protoBase<Message>(_ message: UnsafePointer<Message>) -> UnsafeMutablePointer<ProtobufCMessage> {
    UnsafeMutableRawPointer(mutating: message).assumingMemoryBound(to: ProtobufCMessage.self)
}

/// Checks that a Swift struct type and a descriptor describe the same C message, the
/// one mistake that would otherwise corrupt memory silently.
func checkLayout<Message>(_ type: Message.Type, _ descriptor: UnsafePointer<ProtobufCMessageDescriptor>) {
    precondition(
        descriptor.pointee.sizeof_message == MemoryLayout<Message>.size,
        "\(Message.self) does not match the descriptor of \(protoTypeName(descriptor))"
    )
}

extension String {
    /// Reads a protobuf-c string field. Unset fields of unpacked messages point at
    /// protobuf-c's shared empty string and zeroed structs hold NULL; both read as "".
    public init(protoC pointer: UnsafePointer<CChar>?) {
        guard let pointer else {
            self = ""
            return
        }
        self = String(cString: pointer)
    }
}

extension Array where Element == UInt8 {
    /// Copies a protobuf-c `bytes` field out of the message that owns it.
    public init(protoC data: ProtobufCBinaryData) {
        guard let base = data.data, data.len > 0 else {
            self = []
            return
        }
        self = Array(UnsafeBufferPointer(start: base, count: data.len))
    }
}
