// One call made by `RPCClient`: request messages out (with a bounded send buffer), response
// messages in as an async sequence, then the status and trailers. Works for all four shapes.
import CNGHTTP2
import NIOCore

public final class ClientCall: Sendable {
    public let path: String
    let eventLoop: EventLoop
    /// Only on `eventLoop`: the bound checks it.
    let connection: NIOLoopBound<HTTP2ClientConnection>

    /// Response messages; the sequence throws `RPCError` when the call ends with a non-OK status.
    public let responses: AsyncThrowingStream<ByteBuffer, Error>
    private let continuation: AsyncThrowingStream<ByteBuffer, Error>.Continuation

    /// The call's event-loop side; the box checks that every access is on `eventLoop`.
    private let loop: NIOLoopBoundBox<LoopState>

    struct LoopState {
        var streamID: Int32 = -1
        var outbound = CircularBuffer<ByteBuffer>()
        var outboundBytes = 0
        var requestEnded = false
        var dataDeferred = false
        var sendWaiters: [CheckedContinuation<Void, Error>] = []
        var deframer: MessageDeframer
        var httpStatus = 0
        var headersReceived = false
        var done = false
        var initialMetadata = Metadata()
        var trailers = Metadata()
        var status: Status?
        var statusWaiters: [CheckedContinuation<Status, Never>] = []
    }

    static let sendBufferBytes = 1 << 20

    init(path: String, connection: NIOLoopBound<HTTP2ClientConnection>, eventLoop: EventLoop, maxMessageBytes: Int) {
        self.path = path
        self.connection = connection
        self.eventLoop = eventLoop
        self.loop = .makeBoxSendingValue(LoopState(deframer: MessageDeframer(maxMessageBytes: maxMessageBytes, encoding: .identity)),
                                         eventLoop: eventLoop)
        (responses, continuation) = AsyncThrowingStream.makeStream(bufferingPolicy: .unbounded)
    }

    // MARK: - API

    /// Sends one request message; waits while more than 1 MiB is unsent. After the call has
    /// ended the message is dropped: read `responses` or `status()` for the outcome.
    public func send(_ message: ByteBuffer) async throws {
        let framed = MessageFramer.frame(message, encoding: .identity, allocator: ByteBufferAllocator())
        try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<Void, Error>) in
            eventLoop.execute {
                guard !self.loop.value.requestEnded else {
                    waiter.resume(throwing: RPCError(.failedPrecondition, "send after end() on \(self.path)"))
                    return
                }
                guard !self.loop.value.done else {
                    // The server already answered (often a trailers-only error): the message has
                    // nowhere to go, and `responses` / `status()` carry the outcome.
                    waiter.resume()
                    return
                }
                self.loop.value.outbound.append(framed)
                self.loop.value.outboundBytes += framed.readableBytes
                self.resume()
                if self.loop.value.outboundBytes > Self.sendBufferBytes { self.loop.value.sendWaiters.append(waiter) } else { waiter.resume() }
            }
        }
    }

    /// Half-closes: no more request messages.
    public func end() {
        eventLoop.execute {
            guard !self.loop.value.requestEnded else { return }
            self.loop.value.requestEnded = true
            self.resume()
        }
    }

    /// Resets the stream (the server sees the call cancelled).
    public func cancel() {
        eventLoop.execute {
            guard !self.loop.value.done else { return }
            let streamID = self.loop.value.streamID
            if streamID > 0 { self.connection.value.session.resetStream(streamID: streamID, errorCode: NGHTTP2_CANCEL) }
            self.complete(Status(.cancelled, "cancelled by the client"), trailers: Metadata())
            self.connection.value.flush()
        }
    }

    /// The call's final status (waits for it).
    public func status() async -> Status {
        await withCheckedContinuation { waiter in
            eventLoop.execute {
                if let status = self.loop.value.status { waiter.resume(returning: status) } else { self.loop.value.statusWaiters.append(waiter) }
            }
        }
    }

    /// Response headers (valid once the first response message or the status arrived).
    public var initialMetadata: Metadata { onLoop { $0.initialMetadata } }
    public var trailingMetadata: Metadata { onLoop { $0.trailers } }

    /// Reads the loop state from any thread (blocking on the loop's answer when off it).
    private func onLoop(_ read: @escaping @Sendable (LoopState) -> Metadata) -> Metadata {
        if eventLoop.inEventLoop { return read(loop.value) }
        return (try? eventLoop.submit { read(self.loop.value) }.wait()) ?? Metadata()
    }

    // MARK: - Event-loop side (called by the connection)

    /// The HTTP/2 stream that carries the call, once opened.
    var streamID: Int32 {
        get { loop.value.streamID }
        set { loop.value.streamID = newValue }
    }

    private func resume() {
        if loop.value.dataDeferred, loop.value.streamID > 0 {
            loop.value.dataDeferred = false
            connection.value.session.resumeData(streamID: loop.value.streamID)
        }
        connection.value.flush()
    }

    func readData(into buffer: UnsafeMutableRawBufferPointer) -> NGHTTP2Session.DataRead {
        var written = 0
        while written < buffer.count, var head = loop.value.outbound.first {
            let n = min(head.readableBytes, buffer.count - written)
            head.withUnsafeReadableBytes { bytes in
                UnsafeMutableRawBufferPointer(rebasing: buffer[written..<written + n])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<n]))
            }
            head.moveReaderIndex(forwardBy: n)
            written += n
            if head.readableBytes == 0 {
                loop.value.outbound.removeFirst()
            } else {
                loop.value.outbound[loop.value.outbound.startIndex] = head
            }
        }
        loop.value.outboundBytes -= written
        if loop.value.outboundBytes <= Self.sendBufferBytes / 2, !loop.value.sendWaiters.isEmpty {
            let waiters = loop.value.sendWaiters
            loop.value.sendWaiters = []
            for waiter in waiters { waiter.resume() }
        }
        if loop.value.outbound.isEmpty && loop.value.requestEnded {
            return .end(count: written, trailers: nil)
        }
        if written == 0 {
            loop.value.dataDeferred = true
            return .deferred
        }
        return .bytes(written)
    }

    func receivedHeaders(_ fields: [(String, String)], endStream: Bool) {
        if !loop.value.headersReceived {
            loop.value.headersReceived = true
            loop.value.httpStatus = Int(fields.first { $0.0 == ":status" }?.1 ?? "") ?? 0
            if let encoding = fields.first(where: { $0.0 == "grpc-encoding" })?.1, encoding == "gzip" {
                loop.value.deframer = MessageDeframer(maxMessageBytes: loop.value.deframer.maxMessageBytes, encoding: .gzip)
            }
            loop.value.initialMetadata = Metadata.fromWire(fields)
            if !endStream { return }
        }
        // Trailers (or a trailers-only response).
        let code = fields.first { $0.0 == "grpc-status" }.flatMap { Int($0.1) }.flatMap(StatusCode.init(rawValue:))
        let message = fields.first { $0.0 == "grpc-message" }.map { PercentEncoding.decode($0.1) } ?? ""
        let status: Status
        if let code {
            status = Status(code, message)
        } else if loop.value.httpStatus != 200 {
            status = Status(.unknown, "HTTP status \(loop.value.httpStatus) without grpc-status")
        } else {
            status = Status(.internal, "response ended without grpc-status")
        }
        if loop.value.deframer.bufferedBytes > 0 && status.code == .ok {
            complete(Status(.internal, "response ended inside a message"), trailers: Metadata.fromWire(fields))
        } else {
            complete(status, trailers: Metadata.fromWire(fields))
        }
    }

    func receivedData(_ bytes: UnsafeRawBufferPointer) {
        guard !loop.value.done else { return }
        let allocator = connection.value.allocator
        loop.value.deframer.append(bytes, allocator: allocator)
        do {
            while let message = try loop.value.deframer.next(allocator: allocator) {
                continuation.yield(message)
            }
        } catch {
            connection.value.session.resetStream(streamID: loop.value.streamID, errorCode: NGHTTP2_CANCEL)
            complete((error as? RPCError)?.status ?? Status(.internal, "\(error)"), trailers: Metadata())
        }
    }

    func streamClosed(errorCode: UInt32) {
        guard !loop.value.done else { return }
        let status = errorCode == NGHTTP2_NO_ERROR.rawValue
            ? Status(.internal, "stream closed without a status")
            : Status(.unavailable, "stream reset by the server (HTTP/2 error \(errorCode))")
        complete(status, trailers: Metadata())
    }

    func complete(_ status: Status, trailers: Metadata) {
        guard !loop.value.done else { return }
        loop.value.done = true
        loop.value.status = status
        loop.value.trailers = trailers
        if status.code == .ok {
            continuation.finish()
        } else {
            continuation.finish(throwing: RPCError(status.code, status.message, trailers: trailers))
        }
        let (sendWaiters, statusWaiters) = (loop.value.sendWaiters, loop.value.statusWaiters)
        loop.value.sendWaiters = []
        loop.value.statusWaiters = []
        for waiter in sendWaiters { waiter.resume(throwing: RPCError(status.code, status.message)) }
        for waiter in statusWaiters { waiter.resume(returning: status) }
    }
}
