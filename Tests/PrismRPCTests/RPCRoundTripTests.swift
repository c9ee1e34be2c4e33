// End-to-end checks of the RPC runtime over real sockets: the server and the client of
// PrismRPC talking h2c, with byte-level handlers in every call shape.
import NIOConcurrencyHelpers
import NIOCore
import PrismRPC
import XCTest

final class RPCRoundTripTests: XCTestCase {
    private var server: RPCServer!
    private var client: RPCClient!
    /// What the `Forever` handler's last write threw.
    private let writerError = NIOLockedValueBox<RPCError?>(nil)

    private func bytes(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    override func setUp() async throws {
        var echo = ServiceDefinition(name: "test.Echo")
        echo.add("Unary", .unary { request, _ in request })
        echo.add("Inline", .unaryOnEventLoop { request, _ in request })
        echo.add("Fail", .unary { _, _ in throw RPCError(.failedPrecondition, "needs ☺ and 100%") })
        echo.add("Expand", .serverStreaming { request, _, writer in
            let count = Int(request.getString(at: request.readerIndex, length: request.readableBytes) ?? "") ?? 0
            for i in 0..<count { try await writer.write(ByteBuffer(string: "m\(i)")) }
        })
        echo.add("Count", .clientStreaming { requests, _ in
            var total = 0
            for try await message in requests { total += message.readableBytes }
            return ByteBuffer(string: "\(total)")
        })
        echo.add("Chat", .bidirectional { requests, writer, context in
            context.addTrailer("x-trailer", "done")
            for try await message in requests { try await writer.write(message) }
        })
        echo.add("Patient", .bidirectional { requests, writer, _ in
            // Converse's pattern: the wait for the next message loses a race (here, at once) and
            // is cancelled; the stream can then be read again by the same handler.
            let first = try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
                group.addTask {
                    var incoming = requests.makeAsyncIterator()
                    return try await incoming.next()
                }
                group.addTask { ByteBuffer(string: "gave up") }
                defer { group.cancelAll() }
                return try await group.next()!
            }
            try await writer.write(first ?? ByteBuffer(string: "ended"))
            for try await message in requests { try await writer.write(message) }
        })
        let writerError = self.writerError
        echo.add("Forever", .serverStreaming { _, _, writer in
            do {
                while true { try await writer.write(ByteBuffer(string: "more")) }
            } catch let error as RPCError {
                writerError.withLockedValue { $0 = error }
                throw error
            }
        })
        echo.add("Sleep", .unary { request, _ in
            try await Task.sleep(nanoseconds: 5_000_000_000)
            return request
        })
        var router = Router()
        router.register(echo)
        var config = ServerConfiguration()
        config.port = 0
        config.maxReceiveMessageBytes = 1 << 20
        server = try RPCServer(configuration: config, router: router)
        try await server.start()
        client = try await RPCClient.connect(host: "127.0.0.1", port: server.localAddress!.port!)
    }

    override func tearDown() async throws {
        await client.close()
        await server.shutdown()
    }

    func testUnaryEchoesOnTaskAndOnEventLoop() async throws {
        let a = try await client.unary("/test.Echo/Unary", bytes("hello"))
        XCTAssertEqual(String(buffer: a), "hello")
        let b = try await client.unary("/test.Echo/Inline", bytes("inline"))
        XCTAssertEqual(String(buffer: b), "inline")
    }

    func testLargeMessageCrossesFlowControlWindows() async throws {
        let big = String(repeating: "x", count: 900_000)
        let reply = try await client.unary("/test.Echo/Unary", bytes(big))
        XCTAssertEqual(reply.readableBytes, 900_000)
    }

    func testOversizedMessageIsResourceExhausted() async throws {
        do {
            _ = try await client.unary("/test.Echo/Unary", bytes(String(repeating: "y", count: 2 << 20)))
            XCTFail("expected RESOURCE_EXHAUSTED")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .resourceExhausted)
            XCTAssertTrue(error.message.contains("limit"), error.message)
        }
        // The connection still serves.
        let ok = try await client.unary("/test.Echo/Unary", bytes("after"))
        XCTAssertEqual(String(buffer: ok), "after")
    }

    func testErrorStatusAndPercentEncodedMessage() async throws {
        do {
            _ = try await client.unary("/test.Echo/Fail", bytes(""))
            XCTFail("expected an error")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .failedPrecondition)
            XCTAssertEqual(error.message, "needs ☺ and 100%")
        }
    }

    func testUnknownMethodAndService() async throws {
        for (path, expected) in [("/test.Echo/Nope", "unknown method Nope"), ("/no.Such/Thing", "unknown service no.Such")] {
            do {
                _ = try await client.unary(path, bytes(""))
                XCTFail("expected UNIMPLEMENTED for \(path)")
            } catch let error as RPCError {
                XCTAssertEqual(error.code, .unimplemented)
                XCTAssertTrue(error.message.contains(expected), error.message)
            }
        }
    }

    func testServerStreamingDeliversEveryMessageInOrder() async throws {
        let call = try await client.serverStreaming("/test.Echo/Expand", bytes("1000"))
        var received: [String] = []
        for try await message in call.responses { received.append(String(buffer: message)) }
        XCTAssertEqual(received.count, 1000)
        XCTAssertEqual(received.first, "m0")
        XCTAssertEqual(received.last, "m999")
    }

    func testClientStreamingAndBidirectional() async throws {
        let count = client.makeCall("/test.Echo/Count")
        for size in [10, 20, 30] { try await count.send(bytes(String(repeating: "z", count: size))) }
        count.end()
        var total = ""
        for try await message in count.responses { total = String(buffer: message) }
        XCTAssertEqual(total, "60")

        let chat = client.makeCall("/test.Echo/Chat")
        var iterator = chat.responses.makeAsyncIterator()
        for word in ["ping", "pong", "done"] {
            try await chat.send(bytes(word))
            let echoed = try await iterator.next()
            XCTAssertEqual(echoed.map { String(buffer: $0) }, word)
        }
        chat.end()
        let end = try await iterator.next()
        XCTAssertNil(end)
        let status = await chat.status()
        XCTAssertEqual(status.code, .ok)
        XCTAssertEqual(chat.trailingMetadata["x-trailer"], "done")
    }

    func testAReadCancelledWhileWaitingEndsAndTheStreamReadsOnAfterIt() async throws {
        let call = client.makeCall("/test.Echo/Patient", timeout: .seconds(20))
        var iterator = call.responses.makeAsyncIterator()
        let first = try await iterator.next()
        XCTAssertEqual(first.map { String(buffer: $0) }, "gave up")
        try await call.send(bytes("after"))
        let echoed = try await iterator.next()
        XCTAssertEqual(echoed.map { String(buffer: $0) }, "after", "a new read after the cancelled one gets the message")
        call.end()
        let end = try await iterator.next()
        XCTAssertNil(end)
        let status = await call.status()
        XCTAssertEqual(status.code, .ok, status.message)
    }

    func testAWriterIsToldTheCallEndedWhenTheClientCancels() async throws {
        let call = try await client.serverStreaming("/test.Echo/Forever", bytes(""))
        var iterator = call.responses.makeAsyncIterator()
        _ = try await iterator.next()
        call.cancel()
        let deadline = ContinuousClock.now + .seconds(20)
        while writerError.withLockedValue({ $0 }) == nil && ContinuousClock.now < deadline {
            await Task.yield()
        }
        let error = writerError.withLockedValue { $0 }
        XCTAssertEqual(error?.code, .cancelled, "the writer of a cancelled call stops with CANCELLED")
        XCTAssertEqual(error?.message, "the call has ended")
    }

    func testDeadlineExceeded() async throws {
        let started = ContinuousClock.now
        do {
            _ = try await client.unary("/test.Echo/Sleep", bytes("z"), timeout: .milliseconds(100))
            XCTFail("expected DEADLINE_EXCEEDED")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .deadlineExceeded)
        }
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(4))
    }
}
