// ProtoBuilder is an arena for building protobuf-c message structs from Swift (strings,
// bytes, repeated fields, sub-messages) and encoding them; everything it made is freed with it.
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An arena that builds protobuf-c messages for encoding.
///
/// protobuf-c structs hold raw C pointers, so building one from Swift means allocating
/// strings, byte buffers, arrays and sub-messages that must outlive the struct. The
/// builder makes those allocations and frees them all together when it is released:
/// build a response, `pack` it, let the builder go. Every pointer it hands out is valid
/// for the builder's lifetime only. Not thread-safe; use one builder per message.
///
/// ```swift
/// let builder = ProtoBuilder()
/// let request = builder.message(grpc__testing__simple_request__init)
/// request.pointee.response_size = 4
/// request.pointee.payload = builder.message(grpc__testing__payload__init)
/// request.pointee.payload.pointee.body = builder.bytes([1, 2, 3])
/// let wire = builder.pack(request)
/// ```
///
/// Swift may release an object right after its last use, so pack through the builder
/// (as above) or keep it alive with `withExtendedLifetime(builder) { … }` while the
/// message is still read.
public final class ProtoBuilder {
    private var allocations: [UnsafeMutableRawPointer] = []

    public init() {}

    deinit {
        for allocation in allocations {
            free(allocation)
        }
    }

    /// Takes ownership of a `malloc`ed block so that it is freed with the arena.
    private func own(_ block: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer {
        guard let block else {
            fatalError("ProtoBuilder: out of memory")
        }
        allocations.append(block)
        return block
    }

    /// A new message of the type whose generated init function is `initializer`
    /// (e.g. `grpc__testing__payload__init`), with every field at its default. Use it for
    /// the top-level message and for each sub-message or repeated message element.
    public func message<Message>(_ initializer: ProtoInitializer<Message>) -> UnsafeMutablePointer<Message> {
        let message = own(calloc(1, MemoryLayout<Message>.size)).bindMemory(to: Message.self, capacity: 1)
        initializer(message)
        return message
    }

    /// A new message of the type `descriptor` describes, every field at its default: for code
    /// that knows message types only at run time, such as the JSON codec.
    func message(descriptor: UnsafePointer<ProtobufCMessageDescriptor>) -> UnsafeMutableRawPointer {
        let message = own(calloc(1, descriptor.pointee.sizeof_message))
        protobuf_c_message_init(descriptor, message)
        return message
    }

    /// Zeroed room for `count` values of `size` bytes each: a repeated field's array when its
    /// element type is known only at run time. NULL when `count` is 0, as protobuf-c expects.
    func zeroed(count: Int, size: Int) -> UnsafeMutableRawPointer? {
        count == 0 ? nil : own(calloc(count, size))
    }

    /// A NUL-terminated copy of `string` for a `string` field. A string with an embedded
    /// NUL is cut there, as C strings are.
    public func string(_ string: String) -> UnsafeMutablePointer<CChar> {
        let copy = string.withCString { strdup($0) }
        return own(copy).assumingMemoryBound(to: CChar.self)
    }

    /// A copy of `bytes` for a `bytes` field.
    public func bytes(_ bytes: UnsafeRawBufferPointer) -> ProtobufCBinaryData {
        guard let source = bytes.baseAddress, bytes.count > 0 else {
            return ProtobufCBinaryData(len: 0, data: nil)
        }
        let copy = own(malloc(bytes.count))
        copy.copyMemory(from: source, byteCount: bytes.count)
        return ProtobufCBinaryData(len: bytes.count, data: copy.assumingMemoryBound(to: UInt8.self))
    }

    /// A copy of `bytes` for a `bytes` field.
    public func bytes(_ bytes: [UInt8]) -> ProtobufCBinaryData {
        bytes.withUnsafeBytes { self.bytes($0) }
    }

    /// A copy of the readable bytes of `buffer` for a `bytes` field.
    public func bytes(_ buffer: ByteBuffer) -> ProtobufCBinaryData {
        buffer.withUnsafeReadableBytes { self.bytes($0) }
    }

    /// A C array of `elements` for a repeated field of scalars, enums or `bytes`; set the
    /// field's `n_` count to `elements.count` beside it. Empty arrays are NULL.
    public func array<Element>(_ elements: [Element]) -> UnsafeMutablePointer<Element>? {
        guard !elements.isEmpty else {
            return nil
        }
        let array = own(calloc(elements.count, MemoryLayout<Element>.stride))
            .bindMemory(to: Element.self, capacity: elements.count)
        array.initialize(from: elements, count: elements.count)
        return array
    }

    /// A C array of message pointers for a repeated message (or map) field, e.g. from
    /// `message(_:)` calls; set the field's `n_` count beside it.
    public func array<Message>(
        _ messages: [UnsafeMutablePointer<Message>]
    ) -> UnsafeMutablePointer<UnsafeMutablePointer<Message>?>? {
        array(messages.map { Optional($0) })
    }

    /// A C array of string copies for a `repeated string` field; set the field's `n_`
    /// count beside it.
    public func strings(_ strings: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
        array(strings.map { Optional(string($0)) })
    }

    /// Encodes a message built here (or any initialised protobuf-c message). An
    /// instance method so that the arena, which owns the message's strings and
    /// sub-messages, is certainly alive while they are read.
    public func pack<Message>(_ message: UnsafePointer<Message>) -> [UInt8] {
        protoPack(message)
    }

    /// Encodes a message at the writer index of `buffer`, growing it as needed, and
    /// returns the number of bytes written. Use it to frame a message without a copy.
    @discardableResult
    public func pack<Message>(_ message: UnsafePointer<Message>, into buffer: inout ByteBuffer) -> Int {
        protoPack(message, into: &buffer)
    }
}

/// Encodes any initialised protobuf-c message; the caller keeps its memory alive.
func protoPack<Message>(_ message: UnsafePointer<Message>) -> [UInt8] {
    protoPack(base: checkedBase(message))
}

/// Encodes an initialised protobuf-c message given by its header; the caller keeps its memory alive.
func protoPack(base: UnsafeMutablePointer<ProtobufCMessage>) -> [UInt8] {
    let size = protobuf_c_message_get_packed_size(base)
    guard size > 0 else {
        return []
    }
    return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
        count = protobuf_c_message_pack(base, buffer.baseAddress)
    }
}

/// Encodes any initialised protobuf-c message into `buffer`; the caller keeps its memory alive.
func protoPack<Message>(_ message: UnsafePointer<Message>, into buffer: inout ByteBuffer) -> Int {
    let base = checkedBase(message)
    let size = protobuf_c_message_get_packed_size(base)
    guard size > 0 else {
        return 0
    }
    return buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
        protobuf_c_message_pack(base, out.baseAddress!.assumingMemoryBound(to: UInt8.self))
    }
}

/// The message header, after checking that `message` was initialised by its init
/// function; a zeroed struct has no descriptor and protobuf-c would crash on it.
private func checkedBase<Message>(_ message: UnsafePointer<Message>) -> UnsafeMutablePointer<ProtobufCMessage> {
    let base = protoBase(message)
    guard let descriptor = base.pointee.descriptor else {
        preconditionFailure("pack: \(Message.self) was not initialised by its __init function")
    }
    checkLayout(Message.self, descriptor)
    return base
}
