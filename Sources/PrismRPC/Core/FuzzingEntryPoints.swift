// What the fuzz targets (Sources/PrismFuzz, tools/fuzz.sh) reach of PrismRPC's internals: the
// message deframer, gzip and a whole server connection. SPI, so it is no part of the public API.
import Logging
import NIOCore

@_spi(Fuzzing)
public enum RPCFuzzing {
    /// Feeds `chunks` to a deframer as one call's DATA and returns the messages it cut, or the
    /// error it refused them with (as a call would end).
    public static func deframe(_ chunks: [ArraySlice<UInt8>], gzip: Bool, maxMessageBytes: Int) -> Result<[ByteBuffer], Error> {
        let allocator = ByteBufferAllocator()
        var deframer = MessageDeframer(maxMessageBytes: maxMessageBytes, encoding: gzip ? .gzip : .identity)
        var messages: [ByteBuffer] = []
        do {
            for chunk in chunks {
                chunk.withUnsafeBytes { deframer.append($0, allocator: allocator) }
                while let message = try deframer.next(allocator: allocator) { messages.append(message) }
            }
            try deframer.checkComplete()
            return .success(messages)
        } catch {
            return .failure(error)
        }
    }

    /// gzip-decompresses `bytes` as a compressed message is, refusing more than `limit` bytes.
    public static func gunzip(_ bytes: [UInt8], limit: Int) throws -> [UInt8] {
        let allocator = ByteBufferAllocator()
        let out = try Gzip.decompressCallInput(allocator.buffer(bytes: bytes), limit: limit, allocator: allocator,
                                               what: "message", corrupt: .internal)
        return Array(out.readableBytesView)
    }

    /// gzip-compresses `bytes` as a response message is.
    public static func gzip(_ bytes: [UInt8]) -> [UInt8] {
        let allocator = ByteBufferAllocator()
        return Array(Gzip.compress(allocator.buffer(bytes: bytes), allocator: allocator).readableBytesView)
    }

    /// The handler a server puts first on a connection (past TLS): protocol detection, then
    /// HTTP/2 or HTTP/1.1 serving `router`. Add it to a channel and write the client's bytes.
    public static func connectionHandler(router: Router, configuration: ServerConfiguration) -> ChannelHandler {
        RPCServer.protocolDetector(router: router, configuration: configuration,
                                   logger: Logger(label: "prism.fuzz", factory: { _ in SwiftLogNoOpLogHandler() }),
                                   handlerTasks: HandlerTasks())
    }
}
