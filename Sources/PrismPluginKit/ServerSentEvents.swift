// A parser for text/event-stream bodies (the SSE format of the WHATWG spec), fed with bytes as
// they arrive: what the OpenAI, Anthropic and Gemini streaming APIs all send.
import Foundation

/// One dispatched event: its `event:` name ("" when absent) and its `data:` lines joined by "\n".
public struct ServerSentEvent: Sendable, Equatable {
    public var event: String
    public var data: String

    public init(event: String, data: String) {
        self.event = event
        self.data = data
    }
}

/// Turns byte chunks into events. Handles LF, CRLF and CR line ends, split anywhere.
public struct ServerSentEventParser {
    private var pending: [UInt8] = []
    private var event = ""
    private var data: [String] = []
    private var sawField = false

    public init() {}

    /// Feeds a chunk; returns the events it completed.
    public mutating func feed(_ chunk: Data) -> [ServerSentEvent] {
        pending += chunk
        var out: [ServerSentEvent] = []
        var start = 0
        var i = 0
        while i < pending.count {
            let b = pending[i]
            if b == 0x0A || b == 0x0D {
                // A CR at the very end may be the first half of a CRLF: wait for more bytes.
                if b == 0x0D && i + 1 == pending.count { break }
                line(pending[start..<i], into: &out)
                if b == 0x0D && pending[i + 1] == 0x0A { i += 1 }
                start = i + 1
            }
            i += 1
        }
        pending.removeFirst(start)
        return out
    }

    private mutating func line(_ bytes: ArraySlice<UInt8>, into out: inout [ServerSentEvent]) {
        if bytes.isEmpty {
            if sawField && !data.isEmpty { out.append(ServerSentEvent(event: event, data: data.joined(separator: "\n"))) }
            event = ""
            data = []
            sawField = false
            return
        }
        let text = String(decoding: bytes, as: UTF8.self)
        if text.hasPrefix(":") { return }  // a comment (keep-alive)
        var name = text, value = ""
        if let colon = text.firstIndex(of: ":") {
            name = String(text[..<colon])
            value = String(text[text.index(after: colon)...])
            if value.hasPrefix(" ") { value.removeFirst() }
        }
        sawField = true
        switch name {
        case "event": event = value
        case "data": data.append(value)
        default: break
        }
    }
}
