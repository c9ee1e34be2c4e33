// gRPC's length-prefixed message framing: a 1-byte compressed flag, a 4-byte big-endian
// length, then the message. The deframer takes DATA bytes in any split and yields whole messages.
import NIOCore

/// The message encodings Prism speaks (`grpc-encoding` / `grpc-accept-encoding`).
public enum MessageEncoding: String, Sendable {
    case identity
    case gzip

    static let acceptHeader = "identity,gzip"
}

enum MessageFramer {
    /// Frames `message`, compressing it when `encoding` is gzip.
    static func frame(_ message: ByteBuffer, encoding: MessageEncoding, allocator: ByteBufferAllocator) -> ByteBuffer {
        var payload = message
        var compressed: UInt8 = 0
        if encoding == .gzip {
            payload = Gzip.compress(message, allocator: allocator)
            compressed = 1
        }
        var out = allocator.buffer(capacity: 5 + payload.readableBytes)
        out.writeInteger(compressed)
        out.writeInteger(UInt32(payload.readableBytes))
        out.writeBuffer(&payload)
        return out
    }
}

/// Collects DATA bytes and cuts them into messages, enforcing the receive size limit on the
/// declared length before buffering the message (a 4 GiB prefix allocates nothing).
struct MessageDeframer {
    let maxMessageBytes: Int
    let encoding: MessageEncoding
    private var buffer: ByteBuffer?
    /// Whether the message `next` returned last arrived compressed.
    private(set) var lastWasCompressed = false

    init(maxMessageBytes: Int, encoding: MessageEncoding) {
        self.maxMessageBytes = maxMessageBytes
        self.encoding = encoding
    }

    /// Bytes received but not yet part of a whole message.
    var bufferedBytes: Int { buffer?.readableBytes ?? 0 }

    mutating func append(_ bytes: UnsafeRawBufferPointer, allocator: ByteBufferAllocator) {
        if buffer == nil { buffer = allocator.buffer(capacity: bytes.count) }
        buffer!.writeBytes(bytes)
    }

    mutating func append(_ bytes: ByteBuffer) {
        var bytes = bytes
        if buffer == nil { buffer = bytes } else { buffer!.writeBuffer(&bytes) }
    }

    /// The next whole message, nil when more bytes are needed.
    mutating func next(allocator: ByteBufferAllocator) throws -> ByteBuffer? {
        guard var buf = buffer, buf.readableBytes >= 5 else { return nil }
        let flag = buf.getInteger(at: buf.readerIndex, as: UInt8.self)!
        let length = Int(buf.getInteger(at: buf.readerIndex + 1, as: UInt32.self)!)
        guard length <= maxMessageBytes else {
            throw RPCError(.resourceExhausted,
                           "received message of \(length) bytes exceeds the limit of \(maxMessageBytes) bytes")
        }
        guard flag == 0 || flag == 1 else {
            throw RPCError(.internal, "invalid compressed flag \(flag) in message prefix")
        }
        guard buf.readableBytes >= 5 + length else { return nil }
        buf.moveReaderIndex(forwardBy: 5)
        let payload = buf.readSlice(length: length)!
        buffer = buf.readableBytes == 0 ? nil : buf
        lastWasCompressed = flag == 1
        if flag == 0 { return payload }
        guard encoding == .gzip else {
            throw RPCError(.internal, "message has the compressed flag set but the call has no grpc-encoding")
        }
        return try Gzip.decompressCallInput(payload, limit: maxMessageBytes, allocator: allocator, what: "message", corrupt: .internal)
    }

    /// Called at end of stream: leftover bytes mean the peer cut a message short.
    func checkComplete() throws {
        if bufferedBytes > 0 {
            throw RPCError(.internal, "stream ended inside a message (\(bufferedBytes) bytes of an incomplete message)")
        }
    }
}
