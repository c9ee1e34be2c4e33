// A parser for text/event-stream bodies (the SSE format of the WHATWG spec), fed with bytes as
// they arrive: what the OpenAI, Anthropic and Gemini streaming APIs all send. Lines stay bytes:
// the plugins parse each event's data as JSON straight from its UTF-8, so no String is built for
// a `data:` line on the way.
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

/// One dispatched event with its data as the UTF-8 bytes that arrived (`data:` lines joined by
/// "\n"), ready for JSONValue.parse.
public struct ServerSentEventBytes: Sendable, Equatable {
    public var event: String
    public var data: [UInt8]

    public init(event: String, data: [UInt8]) {
        self.event = event
        self.data = data
    }

}

/// Turns byte chunks into events. Handles LF, CRLF and CR line ends, split anywhere.
public struct ServerSentEventParser {
    private var pending: [UInt8] = []
    /// How many bytes at the start of `pending` are known to hold no line end: a long line (an
    /// image as base64) that arrives in many chunks is scanned once, not once per chunk.
    private var scanned = 0
    private var event = ""
    private var data: [UInt8] = []
    private var dataLines = 0
    private var sawField = false

    public init() {}

    /// Feeds a chunk; returns the events it completed, their data as Strings.
    public mutating func feed(_ chunk: Data) -> [ServerSentEvent] {
        feedBytes(chunk).map { ServerSentEvent(event: $0.event, data: String(decoding: $0.data, as: UTF8.self)) }
    }

    /// Feeds a chunk; returns the events it completed, their data as bytes.
    public mutating func feedBytes(_ chunk: Data) -> [ServerSentEventBytes] {
        chunk.withUnsafeBytes { feedBytes($0) }
    }

    /// Feeds the bytes of a piece of body as the host lends them; returns the events completed.
    public mutating func feedBytes(_ chunk: UnsafeRawBufferPointer) -> [ServerSentEventBytes] {
        var out: [ServerSentEventBytes] = []
        feed(chunk) { event, data in
            out.append(ServerSentEventBytes(event: event, data: data))
            return true
        }
        return out
    }

    /// Feeds a chunk and hands each event it completes to `onEvent` at once: its `event:` name
    /// and its data bytes. No array is made per chunk or per event (the data buffer is reused
    /// unless `onEvent` keeps it), which is why streaming plugins read their answers this way.
    /// When `onEvent` returns false, `feed` returns false at once; the rest of the chunk stays
    /// buffered for the next `feed`.
    @discardableResult
    public mutating func feed(_ chunk: Data, _ onEvent: (_ event: String, _ data: [UInt8]) -> Bool) -> Bool {
        chunk.withUnsafeBytes { feed($0, onEvent) }
    }

    /// `feed` on bytes the host lends for the duration of the call (a piece of body as it
    /// arrives, with no copy into a Data first).
    @discardableResult
    public mutating func feed(_ chunk: UnsafeRawBufferPointer, _ onEvent: (_ event: String, _ data: [UInt8]) -> Bool) -> Bool {
        // As typed bytes, so that the append is one copy rather than a loop over a raw buffer.
        pending.append(contentsOf: chunk.assumingMemoryBound(to: UInt8.self))
        var start = 0
        var i = 0
        var going = true
        while going {
            i = lineEnd(from: max(start, scanned))
            // A CR at the very end may be the first half of a CRLF: wait for more bytes.
            if i == pending.count || (pending[i] == 0x0D && i + 1 == pending.count) { break }
            going = line(pending[start..<i], onEvent)
            start = pending[i] == 0x0D && pending[i + 1] == 0x0A ? i + 2 : i + 1
        }
        scanned = max(0, i - start)
        pending.removeFirst(start)
        return going
    }

    /// The index of the first CR or LF at or after `from`, or `pending.count`: the hot loop.
    /// memchr finds the LF, then looks for a CR only before it (CR-only line ends are rare).
    private func lineEnd(from: Int) -> Int {
        pending.withUnsafeBufferPointer { p in
            guard let base = p.baseAddress, from < p.count else { return p.count }
            var end = p.count
            if let lf = memchr(base + from, 0x0A, end - from) { end = UnsafeRawPointer(lf) - UnsafeRawPointer(base) }
            if let cr = memchr(base + from, 0x0D, end - from) { end = UnsafeRawPointer(cr) - UnsafeRawPointer(base) }
            return end
        }
    }

    /// One line; false when the event it dispatched was refused.
    private mutating func line(_ bytes: ArraySlice<UInt8>, _ onEvent: (String, [UInt8]) -> Bool) -> Bool {
        if bytes.isEmpty {
            var going = true
            if sawField && dataLines > 0 { going = onEvent(event, data) }
            event = ""
            data.removeAll(keepingCapacity: true)
            dataLines = 0
            sawField = false
            return going
        }
        if bytes.first == UInt8(ascii: ":") { return true }  // a comment (keep-alive)
        var name = bytes, value = bytes[bytes.endIndex...]
        if let colon = bytes.firstIndex(of: UInt8(ascii: ":")) {
            name = bytes[..<colon]
            value = bytes[(colon + 1)...]
            if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        }
        sawField = true
        if name.elementsEqual("data".utf8) {
            if dataLines > 0 { data.append(0x0A) }
            data.append(contentsOf: value)
            dataLines += 1
        } else if name.elementsEqual("event".utf8) {
            event = String(decoding: value, as: UTF8.self)
        }
        return true
    }
}
