// ProtoMessage owns one message decoded by protobuf-c, so Swift code can read a C struct
// without managing its memory: the message is freed when the ProtoMessage goes away.
import NIOCore

/// A decoded protobuf message, e.g. `ProtoMessage<Grpc__Testing__SimpleRequest>`.
///
/// Decode request bodies with it; read fields through `pointee` (strings with
/// `String(protoC:)`, bytes with `[UInt8](protoC:)`). The message and everything it
/// points to is owned by this object and freed on deinit, so do not keep pointers
/// taken from it longer than the ProtoMessage itself; Swift may release an object right
/// after its last use, so wrap reads through such pointers in
/// `withExtendedLifetime(message) { … }` when the ProtoMessage is not used after them.
public final class ProtoMessage<Message> {
    /// The decoded message. Valid as long as this object is alive.
    public let pointer: UnsafeMutablePointer<Message>

    /// The protobuf-c descriptor of the message type.
    public var descriptor: UnsafePointer<ProtobufCMessageDescriptor> {
        protoBase(pointer).pointee.descriptor
    }

    /// The full protobuf name of the message type, e.g. `grpc.testing.SimpleRequest`.
    public var typeName: String { protoTypeName(descriptor) }

    /// A copy of the decoded struct; its pointers still belong to this object.
    public var pointee: Message { pointer.pointee }

    /// Decodes `bytes` as the type whose generated init function is `initializer`, e.g.
    /// `try ProtoMessage(grpc__testing__simple_request__init, bytes: body)`.
    /// The usual way to decode: the Swift type and the descriptor cannot disagree.
    public convenience init(_ initializer: ProtoInitializer<Message>, bytes: UnsafeRawBufferPointer) throws {
        try self.init(descriptor: protoDescriptor(initializer), bytes: bytes)
    }

    /// Decodes `bytes` as the type whose generated init function is `initializer`.
    public convenience init(_ initializer: ProtoInitializer<Message>, bytes: [UInt8]) throws {
        try self.init(descriptor: protoDescriptor(initializer), bytes: bytes)
    }

    /// Decodes the readable bytes of `buffer` (without consuming them) as the type whose
    /// generated init function is `initializer`.
    public convenience init(_ initializer: ProtoInitializer<Message>, buffer: ByteBuffer) throws {
        try self.init(descriptor: protoDescriptor(initializer), buffer: buffer)
    }

    /// Decodes `bytes` as the message type `descriptor` describes. Use this form when the
    /// type is only known at run time, e.g. from a method's `input` descriptor; it traps
    /// if `Message` is not the struct `descriptor` describes.
    public convenience init(descriptor: UnsafePointer<ProtobufCMessageDescriptor>, bytes: UnsafeRawBufferPointer) throws {
        self.init(owning: try Self.unpack(descriptor, bytes))
    }

    /// Decodes `bytes` as the message type `descriptor` describes.
    public convenience init(descriptor: UnsafePointer<ProtobufCMessageDescriptor>, bytes: [UInt8]) throws {
        self.init(owning: try bytes.withUnsafeBytes { try Self.unpack(descriptor, $0) })
    }

    /// Decodes the readable bytes of `buffer` (without consuming them) as the message type
    /// `descriptor` describes.
    public convenience init(descriptor: UnsafePointer<ProtobufCMessageDescriptor>, buffer: ByteBuffer) throws {
        self.init(owning: try buffer.withUnsafeReadableBytes { try Self.unpack(descriptor, $0) })
    }

    private init(owning message: UnsafeMutablePointer<Message>) {
        self.pointer = message
    }

    private static func unpack(
        _ descriptor: UnsafePointer<ProtobufCMessageDescriptor>,
        _ bytes: UnsafeRawBufferPointer
    ) throws -> UnsafeMutablePointer<Message> {
        checkLayout(Message.self, descriptor)
        let data = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
        guard let message = protobuf_c_message_unpack(descriptor, nil, bytes.count, data) else {
            throw ProtoError.malformed(protoTypeName(descriptor))
        }
        return UnsafeMutableRawPointer(message).assumingMemoryBound(to: Message.self)
    }

    /// Encodes the message again, e.g. to forward it or to store it.
    public func packed() -> [UInt8] {
        protoPack(pointer)
    }

    deinit {
        protobuf_c_message_free_unpacked(protoBase(pointer), nil)
    }
}
