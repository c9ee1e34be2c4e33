// EventLoopTaskExecutor: a task that prefers it runs on the event loop, including after a
// resume from another thread, and a streaming handler relaying from it keeps order and the
// per-stream cap (its writes suspend and resume on the loop).
import Foundation
import NIOCore
import NIOPosix
import PrismRPC
import XCTest

final class EventLoopTaskExecutorTests: XCTestCase {
    func testAPreferringTaskRunsOnTheLoopAfterAResumeFromAnotherThread() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let executor = EventLoopTaskExecutor(loop)
        let outside = loop.inEventLoop
        let onLoop = await withTaskExecutorPreference(executor) { () async -> [Bool] in
            let before = loop.inEventLoop
            // Resumed from a thread of our own, as a plugin's emit resumes the reader.
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                Thread { continuation.resume() }.start()
            }
            return [before, loop.inEventLoop]
        }
        XCTAssertFalse(outside)
        XCTAssertEqual(onLoop, [true, true])
        try await group.shutdownGracefully()
    }

    func testStreamingFromTheLoopKeepsOrderOverThePerStreamCap() async throws {
        var service = ServiceDefinition(name: "test.Relay")
        // 4 MiB in 64 KiB messages: over the per-stream cap, so writes wait for room.
        service.add("Relay", .serverStreaming { _, context, writer in
            try await withTaskExecutorPreference(EventLoopTaskExecutor(context.eventLoop)) {
                for i in 0..<64 {
                    var message = ByteBuffer(string: "\(i):")
                    message.writeRepeatingByte(UInt8(ascii: "r"), count: 65_536)
                    try await writer.write(message)
                    XCTAssertTrue(context.eventLoop.inEventLoop)
                }
            }
        })
        var router = Router()
        router.register(service)
        var config = ServerConfiguration()
        config.port = 0
        let server = try RPCServer(configuration: config, router: router)
        try await server.start()
        let client = try await RPCClient.connect(host: "127.0.0.1", port: server.localAddress!.port!)
        let call = try await client.serverStreaming("/test.Relay/Relay", ByteBuffer())
        var prefixes: [String] = []
        for try await message in call.responses {
            let text = String(buffer: message)
            prefixes.append(String(text.prefix(while: { $0 != ":" })))
            XCTAssertEqual(message.readableBytes, text.prefix(while: { $0 != ":" }).count + 1 + 65_536)
        }
        XCTAssertEqual(prefixes, (0..<64).map { "\($0)" })
        await client.close()
        await server.shutdown()
    }
}
