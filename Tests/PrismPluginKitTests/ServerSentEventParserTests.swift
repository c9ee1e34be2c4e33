// The SSE parser of PrismPluginKit on the framings the vendors send (OpenAI's `data:` frames,
// Anthropic's `event:` + `data:`, Gemini's CRLF), split at every byte boundary.
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

    func testAnUnfinishedEventIsNotDispatched() {
        XCTAssertEqual(parse("data: partial\n", splitEvery: 100), [])
    }
}
