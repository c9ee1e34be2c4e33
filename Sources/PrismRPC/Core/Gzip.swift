// gzip compression and bounded decompression of single gRPC messages (zlib).
// Decompression stops at a size limit, so a small compressed message cannot expand into a bomb.
import CZlib
import NIOCore

enum Gzip {
    /// Compresses `input` into a gzip member.
    static func compress(_ input: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        var stream = z_stream()
        // windowBits 15 + 16 asks zlib for a gzip header instead of a zlib one.
        let rc = deflateInit2_(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                               zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        precondition(rc == Z_OK, "deflateInit2 failed: \(rc)")
        defer { deflateEnd(&stream) }
        var output = allocator.buffer(capacity: Int(deflateBound(&stream, UInt(input.readableBytes))) + 32)
        input.withUnsafeReadableBytes { inBytes in
            stream.next_in = UnsafeMutablePointer(mutating: inBytes.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(inBytes.count)
            while true {
                output.reserveCapacity(minimumWritableBytes: 4096)
                let status: Int32 = output.withUnsafeMutableWritableBytes { outBytes in
                    stream.next_out = outBytes.bindMemory(to: Bytef.self).baseAddress
                    stream.avail_out = uInt(outBytes.count)
                    let status = deflate(&stream, Z_FINISH)
                    return status
                }
                let written = output.writableBytes - Int(stream.avail_out)
                output.moveWriterIndex(forwardBy: written)
                if status == Z_STREAM_END { break }
                precondition(status == Z_OK || status == Z_BUF_ERROR, "deflate failed: \(status)")
            }
        }
        return output
    }

    enum DecompressError: Error {
        case tooLarge(limit: Int)
        case corrupt
    }

    /// `decompress` for what a caller sent: past `limit` is RESOURCE_EXHAUSTED, a stream that is
    /// not gzip `corrupt` (the code the protocol asks for); both messages name `what`.
    static func decompressCallInput(_ input: ByteBuffer, limit: Int, allocator: ByteBufferAllocator,
                                    what: String, corrupt: StatusCode) throws -> ByteBuffer {
        do {
            return try decompress(input, limit: limit, allocator: allocator)
        } catch DecompressError.tooLarge(let limit) {
            throw RPCError(.resourceExhausted, "decompressed \(what) exceeds the limit of \(limit) bytes")
        } catch {
            throw RPCError(corrupt, "\(what) could not be decompressed with gzip")
        }
    }

    /// Decompresses one gzip member, refusing to produce more than `limit` bytes.
    static func decompress(_ input: ByteBuffer, limit: Int, allocator: ByteBufferAllocator) throws -> ByteBuffer {
        var stream = z_stream()
        let rc = inflateInit2_(&stream, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else { throw DecompressError.corrupt }
        defer { inflateEnd(&stream) }
        var output = allocator.buffer(capacity: min(limit, max(256, input.readableBytes * 4)))
        try input.withUnsafeReadableBytes { inBytes in
            stream.next_in = UnsafeMutablePointer(mutating: inBytes.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(inBytes.count)
            while true {
                if output.writableBytes == 0 {
                    guard output.readableBytes < limit else { throw DecompressError.tooLarge(limit: limit) }
                    output.reserveCapacity(min(limit + 1, output.capacity * 2))
                }
                let room = min(output.writableBytes, limit + 1 - output.readableBytes)
                let status: Int32 = output.withUnsafeMutableWritableBytes { outBytes in
                    stream.next_out = outBytes.bindMemory(to: Bytef.self).baseAddress
                    stream.avail_out = uInt(room)
                    return inflate(&stream, Z_NO_FLUSH)
                }
                output.moveWriterIndex(forwardBy: room - Int(stream.avail_out))
                if output.readableBytes > limit { throw DecompressError.tooLarge(limit: limit) }
                if status == Z_STREAM_END { return }
                guard status == Z_OK || (status == Z_BUF_ERROR && stream.avail_out == 0) else {
                    throw DecompressError.corrupt
                }
                if stream.avail_in == 0 && stream.avail_out != 0 { throw DecompressError.corrupt }
            }
        }
        return output
    }
}
