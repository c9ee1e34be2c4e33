// The SSE parser of PrismPluginKit on the framings the vendors send (OpenAI's `data:` frames,
// Anthropic's `event:` + `data:`, Gemini's CRLF), split at every byte boundary, through both its
// String API, its byte API and the callback the plugins use.
import Foundation
import PrismPluginKit
import XCTest

final class ServerSentEventParserTests: XCTestCase {
    private func parse(_ text: String, splitEvery n: Int) -> [ServerSentEvent] {
        var parser = ServerSentEventParser()
        let bytes = Array(text.utf8)
        var out: [ServerSentEvent] = []
        var i = 0
        while i < bytes.count {
            out += parser.feed(Data(bytes[i..<min(i + n, bytes.count)]))
            i += n
        }
        return out
    }

    func testOpenAIFramesWithDone() {
        let text = "data: {\"a\":1}\n\n: keep-alive\n\ndata: [DONE]\n\n"
        for n in 1...text.utf8.count {
            XCTAssertEqual(parse(text, splitEvery: n), [ServerSentEvent(event: "", data: "{\"a\":1}"), ServerSentEvent(event: "", data: "[DONE]")], "split \(n)")
        }
    }

    func testAnthropicNamedEvents() {
        let text = "event: ping\ndata: {\"type\":\"ping\"}\n\nevent: message_stop\ndata: {}\n\n"
        XCTAssertEqual(parse(text, splitEvery: 3), [ServerSentEvent(event: "ping", data: "{\"type\":\"ping\"}"), ServerSentEvent(event: "message_stop", data: "{}")])
    }

    func testCRLFFramesSplitBetweenCRAndLF() {
        let text = "data: {\"x\": 1}\r\n\r\ndata: two\r\ndata: lines\r\n\r\n"
        for n in 1...text.utf8.count {
            XCTAssertEqual(parse(text, splitEvery: n), [ServerSentEvent(event: "", data: "{\"x\": 1}"), ServerSentEvent(event: "", data: "two\nlines")], "split \(n)")
        }
    }

    func testTheCallbackSeesEventsAsTheyCompleteAndCanStopTheChunk() {
        var parser = ServerSentEventParser()
        var seen: [String] = []
        let going = parser.feed(Data("event: a\ndata: 1\n\ndata: 2\n\ndata: 3\n\n".utf8)) { event, data in
            seen.append(event + "=" + String(decoding: data, as: UTF8.self))
            return seen.count < 2
        }
        XCTAssertFalse(going)
        XCTAssertEqual(seen, ["a=1", "=2"], "nothing after the refused event")
        var later: [String] = []
        XCTAssertTrue(parser.feed(Data("data: 4\n\n".utf8)) { _, data in later.append(String(decoding: data, as: UTF8.self)); return true })
        XCTAssertEqual(later, ["3", "4"], "the next feed goes on where the refused event ended")
    }

    func testAnUnfinishedEventIsNotDispatched() {
        XCTAssertEqual(parse("data: partial\n", splitEvery: 100), [])
    }

    private func parseBytes(_ text: String, splitEvery n: Int) -> [ServerSentEventBytes] {
        var parser = ServerSentEventParser()
        let bytes = Array(text.utf8)
        var out: [ServerSentEventBytes] = []
        var i = 0
        while i < bytes.count {
            out += parser.feedBytes(Data(bytes[i..<min(i + n, bytes.count)]))
            i += n
        }
        return out
    }

    func testByteAPIOnEveryFraming() {
        let text = "event: content_block_delta\r\ndata: {\"t\":\"é😀\"}\r\n\r\n: ping\n\ndata: two\rdata: lines\r\rdata: [DONE]\n\n"
        let expected = [
            ServerSentEventBytes(event: "content_block_delta", data: Array("{\"t\":\"é😀\"}".utf8)),
            ServerSentEventBytes(event: "", data: Array("two\nlines".utf8)),
            ServerSentEventBytes(event: "", data: Array("[DONE]".utf8)),
        ]
        for n in 1...text.utf8.count {
            XCTAssertEqual(parseBytes(text, splitEvery: n), expected, "split \(n)")
        }
    }

    func testByteAPIFieldEdgeCases() {
        // No space after the colon, an empty data line, a field without a colon, an unknown field,
        // and an event name that does not carry over to the next event.
        let text = "data:x\ndata:\nretry: 5\nid\n\nevent: named\ndata: y\n\ndata: z\n\n"
        XCTAssertEqual(parseBytes(text, splitEvery: 2), [
            ServerSentEventBytes(event: "", data: Array("x\n".utf8)),
            ServerSentEventBytes(event: "named", data: Array("y".utf8)),
            ServerSentEventBytes(event: "", data: Array("z".utf8)),
        ])
        XCTAssertEqual(parseBytes("event: only\n\n", splitEvery: 100), [], "an event without data is not dispatched")
        XCTAssertEqual(parseBytes("data: partial", splitEvery: 100), [], "an unfinished line stays pending")
    }

    func testALongLineInManyChunks() {
        let payload = String(repeating: "QUJD", count: 50_000)  // 200 kB, like an image as base64
        let text = "data: {\"b64\":\"" + payload + "\"}\r\n\r\ndata: next\r\n\r\n"
        let events = parseBytes(text, splitEvery: 4093)
        XCTAssertEqual(events.map { $0.data.count }, [payload.utf8.count + 10, 4])
        XCTAssertEqual(events.last?.data, Array("next".utf8))
        XCTAssertTrue(events.first?.data.starts(with: Array("{\"b64\":\"QUJD".utf8)) ?? false)
    }
}
