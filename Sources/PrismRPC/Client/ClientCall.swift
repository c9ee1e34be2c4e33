// One call made by `RPCClient`: request messages out (with a bounded send buffer), response
// messages in as an async sequence, then the status and trailers. Works for all four shapes.
import CNGHTTP2
import NIOCore

// @unchecked: the `var`s below are touched only on `eventLoop` (the connection calls in there, and
// the public methods hop there; the event-loop side checks it), the rest is `let` and Sendable.
public final class ClientCall: @unchecked Sendable {
    public let path: String
    let eventLoop: EventLoop
    /// Only on `eventLoop`: the bound checks it.
    let connection: NIOLoopBound<HTTP2ClientConnection>

    /// Response messages; the sequence throws `RPCError` when the call ends with a non-OK status.
    public let responses: AsyncThrowingStream<ByteBuffer, Error>
    private let continuation: AsyncThrowingStream<ByteBuffer, Error>.Continuation

    // Event-loop state.
    var streamID: Int32 = -1
    var outbound = CircularBuffer<ByteBuffer>()
    var outboundBytes = 0
    var requestEnded = false
    var endSent = false
    var dataDeferred = false
    var sendWaiters: [CheckedContinuation<Void, Error>] = []
    var deframer: MessageDeframer
    var httpStatus = 0
    var headersReceived = false
    var done = false
    private(set) var initialMetadataValue = Metadata()
    private(set) var trailersValue = Metadata()
    private var statusValue: Status?
    private var statusWaiters: [CheckedContinuation<Status, Never>] = []

    static let sendBufferBytes = 1 << 20

    init(path: String, connection: NIOLoopBound<HTTP2ClientConnection>, eventLoop: EventLoop, maxMessageBytes: Int) {
        self.path = path
        self.connection = connection
        self.eventLoop = eventLoop
        self.deframer = MessageDeframer(maxMessageBytes: maxMessageBytes, encoding: .identity)
        (responses, continuation) = AsyncThrowingStream.makeStream(bufferingPolicy: .unbounded)
    }

    // MARK: - API

    /// Sends one request message; waits while more than 1 MiB is unsent. After the call has
    /// ended the message is dropped: read `responses` or `status()` for the outcome.
    public func send(_ message: ByteBuffer) async throws {
        let framed = MessageFramer.frame(message, encoding: .identity, allocator: ByteBufferAllocator())
        try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<Void, Error>) in
            eventLoop.execute {
                guard !self.requestEnded else {
                    waiter.resume(throwing: RPCError(.failedPrecondition, "send after end() on \(self.path)"))
                    return
                }
                guard !self.done else {
                    // The server already answered (often a trailers-only error): the message has
                    // nowhere to go, and `responses` / `status()` carry the outcome.
                    waiter.resume()
                    return
                }
                self.outbound.append(framed)
                self.outboundBytes += framed.readableBytes
                self.resume()
                if self.outboundBytes > Self.sendBufferBytes { self.sendWaiters.append(waiter) } else { waiter.resume() }
            }
        }
    }

    /// Half-closes: no more request messages.
    public func end() {
        eventLoop.execute {
            guard !self.requestEnded else { return }
            self.requestEnded = true
            self.resume()
        }
    }

    /// Resets the stream (the server sees the call cancelled).
    public func cancel() {
        eventLoop.execute {
            guard !self.done else { return }
            if self.streamID > 0 { self.connection.value.session.resetStream(streamID: self.streamID, errorCode: NGHTTP2_CANCEL) }
            self.complete(Status(.cancelled, "cancelled by the client"), trailers: Metadata())
            self.connection.value.flush()
        }
    }

    /// The call's final status (waits for it).
    public func status() async -> Status {
        await withCheckedContinuation { waiter in
            eventLoop.execute {
                if let status = self.statusValue { waiter.resume(returning: status) } else { self.statusWaiters.append(waiter) }
            }
        }
    }

    /// Response headers (valid once the first response message or the status arrived).
    public var initialMetadata: Metadata { eventLoop.inEventLoop ? initialMetadataValue : (try? eventLoop.submit { self.initialMetadataValue }.wait()) ?? Metadata() }
    public var trailingMetadata: Metadata { eventLoop.inEventLoop ? trailersValue : (try? eventLoop.submit { self.trailersValue }.wait()) ?? Metadata() }

    // MARK: - Event-loop side

    private func resume() {
        if dataDeferred, streamID > 0 {
            dataDeferred = false
            connection.value.session.resumeData(streamID: streamID)
        }
        connection.value.flush()
    }

    func readData(into buffer: UnsafeMutableRawBufferPointer) -> NGHTTP2Session.DataRead {
        eventLoop.assertInEventLoop()
        var written = 0
        while written < buffer.count, var head = outbound.first {
            let n = min(head.readableBytes, buffer.count - written)
            head.withUnsafeReadableBytes { bytes in
                UnsafeMutableRawBufferPointer(rebasing: buffer[written..<written + n])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<n]))
            }
            head.moveReaderIndex(forwardBy: n)
            written += n
            if head.readableBytes == 0 { outbound.removeFirst() } else { outbound[outbound.startIndex] = head }
        }
        outboundBytes -= written
        if outboundBytes <= Self.sendBufferBytes / 2, !sendWaiters.isEmpty {
            let waiters = sendWaiters
            sendWaiters = []
            for waiter in waiters { waiter.resume() }
        }
        if outbound.isEmpty && requestEnded {
            endSent = true
            return .end(count: written, trailers: nil)
        }
        if written == 0 {
            dataDeferred = true
            return .deferred
        }
        return .bytes(written)
    }

    func receivedHeaders(_ fields: [(String, String)], endStream: Bool) {
        eventLoop.assertInEventLoop()
        if !headersReceived {
            headersReceived = true
            httpStatus = Int(fields.first { $0.0 == ":status" }?.1 ?? "") ?? 0
            if let encoding = fields.first(where: { $0.0 == "grpc-encoding" })?.1, encoding == "gzip" {
                deframer = MessageDeframer(maxMessageBytes: deframer.maxMessageBytes, encoding: .gzip)
            }
            initialMetadataValue = Metadata.fromWire(fields)
            if !endStream { return }
        }
        // Trailers (or a trailers-only response).
        let code = fields.first { $0.0 == "grpc-status" }.flatMap { Int($0.1) }.flatMap(StatusCode.init(rawValue:))
        let message = fields.first { $0.0 == "grpc-message" }.map { PercentEncoding.decode($0.1) } ?? ""
        let status: Status
        if let code {
            status = Status(code, message)
        } else if httpStatus != 200 {
            status = Status(.unknown, "HTTP status \(httpStatus) without grpc-status")
        } else {
            status = Status(.internal, "response ended without grpc-status")
        }
        if deframer.bufferedBytes > 0 && status.code == .ok {
            complete(Status(.internal, "response ended inside a message"), trailers: Metadata.fromWire(fields))
        } else {
            complete(status, trailers: Metadata.fromWire(fields))
        }
    }

    func receivedData(_ bytes: UnsafeRawBufferPointer) {
        eventLoop.assertInEventLoop()
        guard !done else { return }
        let allocator = connection.value.allocator
        deframer.append(bytes, allocator: allocator)
        do {
            while let message = try deframer.next(allocator: allocator) {
                continuation.yield(message)
            }
        } catch {
            connection.value.session.resetStream(streamID: streamID, errorCode: NGHTTP2_CANCEL)
            complete((error as? RPCError)?.status ?? Status(.internal, "\(error)"), trailers: Metadata())
        }
    }

    func streamClosed(errorCode: UInt32) {
        guard !done else { return }
        let status = errorCode == NGHTTP2_NO_ERROR.rawValue
            ? Status(.internal, "stream closed without a status")
            : Status(.unavailable, "stream reset by the server (HTTP/2 error \(errorCode))")
        complete(status, trailers: Metadata())
    }

    func complete(_ status: Status, trailers: Metadata) {
        eventLoop.preconditionInEventLoop()
        guard !done else { return }
        done = true
        statusValue = status
        trailersValue = trailers
        if status.code == .ok {
            continuation.finish()
        } else {
            continuation.finish(throwing: RPCError(status.code, status.message, trailers: trailers))
        }
        for waiter in sendWaiters { waiter.resume(throwing: RPCError(status.code, status.message)) }
        sendWaiters = []
        for waiter in statusWaiters { waiter.resume(returning: status) }
        statusWaiters = []
    }
}
