// Reads a streamed Chat Completions answer: `data:` frames up to `[DONE]`, text deltas passed on
// at once, tool-call fragments joined by index, the usage chunk, and every way it can fail.
import Foundation
import PrismPluginKit

/// The state of one streamed answer. `receive` is fed by the HTTP transfer; `end` closes it.
struct ChatStream: ResponseDecoder {
    let call: ProviderCall
    private var parser = ServerSentEventParser()
    private var status = 0
    private var errorBody = Data()
    private var sawDone = false
    /// Tool calls by their `index`: id and name from the first fragment, arguments concatenated.
    private var tools: [Int: (id: String, name: String, arguments: String)] = [:]
    private var finishReason: String?
    private var usage: (input: UInt64, output: UInt64)?
    private var streamError: CallFailure?
    private var emittedContent = false

    init(call: ProviderCall) { self.call = call }

    /// Takes a body chunk; false stops the transfer (cancelled, or a mid-stream error).
    mutating func receive(_ head: HTTPResponseHead, _ chunk: UnsafeRawBufferPointer) -> Bool {
        status = head.status
        guard head.status == 200 else {
            if errorBody.count < HTTPLimits.maxErrorBodyBytes { errorBody += chunk.prefix(HTTPLimits.maxErrorBodyBytes - errorBody.count) }
            return true
        }
        // The parser is moved out while it calls back into this stream, and back after.
        var events = ServerSentEventParser()
        swap(&events, &parser)
        defer { swap(&events, &parser) }
        return events.feed(chunk) { _, data in handle(data) }
    }

    /// One frame's data; false stops the stream.
    private mutating func handle(_ data: [UInt8]) -> Bool {
        if data.elementsEqual("[DONE]".utf8) {
            sawDone = true
            return true
        }
        let chunk: ChatChunk
        do { chunk = try ChatChunk(data) } catch {
            streamError = CallFailure(.internalError, "openai sent a frame that is not JSON (\(error))")
            return false
        }
        guard chunk.isObject else {
            streamError = CallFailure(.internalError, "openai sent a frame that is not a JSON object")
            return false
        }
        if let error = chunk.error, error.object != nil {
            // An error after the 200: whatever was sent stays sent; the call ends non-OK.
            let message = error["message"]?.string ?? "stream error"
            streamError = CallFailure(.unavailable, "openai failed mid-stream: \(message)", retryable: true)
            return false
        }
        if let u = chunk.usage, u.object != nil {
            usage = (u["prompt_tokens"]?.uint64 ?? 0, u["completion_tokens"]?.uint64 ?? 0)
        }
        for choice in chunk.choices where choice.index == 0 {
            if let text = choice.content, !text.isEmpty {
                emittedContent = true
                if !call.text(text) { return false }
            }
            for fragment in choice.toolCalls?.array ?? [] {
                let index = fragment["index"]?.int ?? 0
                let function = fragment["function"]
                var tool = tools[index] ?? ("", "", "")
                if let id = fragment["id"]?.string { tool.id = id }
                if let name = function?["name"]?.string { tool.name += name }
                if let arguments = function?["arguments"]?.string { tool.arguments += arguments }
                tools[index] = tool
            }
            if let reason = choice.finishReason { finishReason = reason }
        }
        return true
    }

    /// The transfer completed: finish the call from what arrived.
    mutating func end(_ head: HTTPResponseHead) throws {
        status = head.status
        guard status == 200 else { throw OpenAIErrors.failure(status: status, headers: head.headers, body: errorBody) }
        if let streamError { throw streamError }
        guard sawDone else {
            throw CallFailure(.unavailable, "openai's stream ended before [DONE]", retryable: !emittedContent)
        }
        for index in tools.keys.sorted() {
            let t = tools[index]!
            if !call.toolCall(id: t.id, name: t.name, argumentsJSON: t.arguments.isEmpty ? "{}" : t.arguments) { break }
        }
        if let usage { call.usage(input: usage.input, output: usage.output) }
        call.finished(Self.stopReason(finishReason))
        if call.isCancelled { throw CallFailure(.cancelled, "cancelled") }
        call.finishOK()
    }

    /// The transfer failed: the failure to finish with. Cut mid-body, the answer is partial, and
    /// the host ends the call non-OK after the content sent.
    func failure(for error: HTTPTransferError) -> CallFailure {
        streamError ?? VendorFailures.failure(for: error, vendor: "openai", status: status)
    }

    /// The stop reason of a `finish_reason` (also read from batch answers).
    static func stopReason(_ reason: String?) -> StopReason {
        switch reason {
        case "length": return .maxTokens
        case "tool_calls", "function_call": return .toolUse
        case "content_filter": return .refusal
        default: return .endTurn
        }
    }
}

/// What ChatStream acts on in one chunk, read with JSONParser: the members every chunk repeats
/// (id, object, created, model, fingerprint, obfuscation padding, logprobs) are checked and
/// skipped, not built, so a text delta costs its text and the choices array. A repeated key
/// keeps its last value, as JSONValue's lookups do.
struct ChatChunk {
    /// A choice that is an object; `index` 0 when absent or not an integer.
    struct Choice {
        var index = 0
        var content: String?
        var toolCalls: JSONValue?
        var finishReason: String?
    }

    var isObject = false
    var error: JSONValue?
    var usage: JSONValue?
    var choices: [Choice] = []

    init(_ data: [UInt8]) throws {
        var chunk = ChatChunk()
        let isObject = try JSONParser.read(data) { p in
            try p.readObject { key, p in
                switch key {
                case "error": chunk.error = try p.readValue()
                case "usage": chunk.usage = try p.readValue()
                case "choices":
                    chunk.choices = []
                    try p.readArray { p in
                        var choice = Choice()
                        if try p.readObject({ key, p in try choice.read(key, &p) }) { chunk.choices.append(choice) }
                    }
                default: break  // skipped
                }
            }
        }
        chunk.isObject = isObject
        self = chunk
    }

    private init() {}
}

extension ChatChunk.Choice {
    /// One member of a choice object.
    mutating func read(_ key: JSONKey, _ p: inout JSONParser) throws {
        switch key {
        case "index": index = try p.readValue().int ?? 0
        case "finish_reason": finishReason = try p.readString()
        case "delta":
            // A repeated delta replaces the whole of the one before.
            content = nil
            toolCalls = nil
            try p.readObject { key, p in
                switch key {
                case "content": content = try p.readString()
                case "tool_calls": toolCalls = try p.readValue()
                default: break
                }
            }
        default: break
        }
    }
}
