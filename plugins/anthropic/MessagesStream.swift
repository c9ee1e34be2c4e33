// Reads a streamed Messages answer: message_start, content blocks (text_delta passed on at once,
// input_json_delta joined per block, or streamed as text for the response schema's tool), message_delta usage and stop_reason, message_stop, `ping`
// and unknown events ignored, and `event: error` after the 200 surfaced as a failure.
import Foundation
import PrismPluginKit

struct MessagesStream: ResponseDecoder {
    let call: ProviderCall
    private var parser = ServerSentEventParser()
    private var status = 0
    private var errorBody = Data()
    private var sawStop = false
    /// tool_use blocks by index: id, name, and the partial_json fragments joined.
    private var tools: [Int: (id: String, name: String, json: String)] = [:]
    private var stopReason: String?
    private var inputTokens: UInt64 = 0
    private var outputTokens: UInt64 = 0
    /// Prompt cache use (cache_read_input_tokens, cache_creation_input_tokens), not in inputTokens.
    private var cacheReadTokens: UInt64 = 0
    private var cacheWriteTokens: UInt64 = 0
    private var streamError: CallFailure?
    private var emittedContent = false
    /// The answer came as the response schema's tool: its "tool_use" stop is the end of the turn.
    private var answeredBySchemaTool = false

    init(call: ProviderCall) { self.call = call }

    mutating func receive(_ head: HTTPResponseHead, _ chunk: UnsafeRawBufferPointer) -> Bool {
        status = head.status
        guard head.status == 200 else {
            if errorBody.count < HTTPLimits.maxErrorBodyBytes { errorBody += chunk.prefix(HTTPLimits.maxErrorBodyBytes - errorBody.count) }
            return true
        }
        for event in parser.feedBytes(chunk) where !handle(event) { return false }
        return true
    }

    private mutating func handle(_ event: ServerSentEventBytes) -> Bool {
        let e: JSONValue
        do { e = try JSONValue.parse(event.data) } catch {
            streamError = CallFailure(.internalError, "anthropic sent an event that is not JSON (\(error))")
            return false
        }
        guard e.object != nil else {
            streamError = CallFailure(.internalError, "anthropic sent an event that is not a JSON object")
            return false
        }
        let type = e["type"]?.string ?? event.event
        switch type {
        case "message_start":
            let usage = e["message"]?["usage"]
            inputTokens = Self.number(usage?["input_tokens"])
            outputTokens = Self.number(usage?["output_tokens"])
            cacheReadTokens = Self.number(usage?["cache_read_input_tokens"])
            cacheWriteTokens = Self.number(usage?["cache_creation_input_tokens"])
        case "content_block_start":
            if let block = e["content_block"], block["type"]?.string == "tool_use" {
                tools[e["index"]?.int ?? 0] = (block["id"]?.string ?? "", block["name"]?.string ?? "", "")
            }
        case "content_block_delta":
            let delta = e["delta"]
            let index = e["index"]?.int ?? 0
            switch delta?["type"]?.string {
            case "text_delta":
                if let text = delta?["text"]?.string, !text.isEmpty {
                    emittedContent = true
                    if !call.text(text) { return false }
                }
            case "input_json_delta":
                let piece = delta?["partial_json"]?.string ?? ""
                if tools[index]?.name == SchemaTool.name {
                    // The answer of a response schema streams as text while it arrives.
                    if !piece.isEmpty {
                        emittedContent = true
                        if !call.text(piece) { return false }
                    }
                } else {
                    tools[index]?.json += piece
                }
            default:
                break  // thinking, signature and citations deltas are not passed on
            }
        case "content_block_stop":
            let index = e["index"]?.int ?? 0
            if let tool = tools.removeValue(forKey: index) {
                if tool.name == SchemaTool.name {
                    answeredBySchemaTool = true
                } else if tool.name == SchemaTool.wrappedName {
                    answeredBySchemaTool = true
                    emittedContent = true
                    if !call.text(SchemaTool.answer(toolName: tool.name, inputJSON: tool.json)) { return false }
                } else {
                    emittedContent = true
                    if !call.toolCall(id: tool.id, name: tool.name, argumentsJSON: tool.json.isEmpty ? "{}" : tool.json) { return false }
                }
            }
        case "message_delta":
            if let reason = e["delta"]?["stop_reason"]?.string { stopReason = reason }
            // Cumulative: the last one counts.
            if let usage = e["usage"], usage.object != nil {
                if usage["input_tokens"] != nil { inputTokens = Self.number(usage["input_tokens"]) }
                outputTokens = Self.number(usage["output_tokens"])
                if usage["cache_read_input_tokens"] != nil { cacheReadTokens = Self.number(usage["cache_read_input_tokens"]) }
                if usage["cache_creation_input_tokens"] != nil { cacheWriteTokens = Self.number(usage["cache_creation_input_tokens"]) }
            }
        case "message_stop":
            sawStop = true
        case "error":
            let error = e["error"]
            let kind = error?["type"]?.string ?? "error"
            streamError = CallFailure(.unavailable, "anthropic failed mid-stream (\(kind)): \(error?["message"]?.string ?? "")", retryable: true)
            return false
        default:
            break  // ping and events added later
        }
        return true
    }

    mutating func end(_ head: HTTPResponseHead) throws {
        status = head.status
        guard status == 200 else { throw AnthropicErrors.failure(status: status, headers: head.headers, body: errorBody) }
        if let streamError { throw streamError }
        guard sawStop else { throw CallFailure(.unavailable, "anthropic's stream ended before message_stop", retryable: !emittedContent) }
        call.usage(input: inputTokens, output: outputTokens, cacheReadTokens: cacheReadTokens, cacheWriteTokens: cacheWriteTokens)
        call.finished(answeredBySchemaTool && stopReason == "tool_use" ? .endTurn : Self.stopReason(stopReason))
        if call.isCancelled { throw CallFailure(.cancelled, "cancelled") }
        call.finishOK()
    }

    func failure(for error: HTTPTransferError) -> CallFailure {
        streamError ?? VendorFailures.failure(for: error, vendor: "anthropic", status: status)
    }

    /// Anthropic's stop_reason as the ABI's (batch results map theirs the same way).
    static func stopReason(_ reason: String?) -> StopReason {
        switch reason {
        case "max_tokens", "model_context_window_exceeded": return .maxTokens
        case "tool_use": return .toolUse
        case "stop_sequence": return .sequence
        case "refusal": return .refusal
        default: return .endTurn
        }
    }

    private static func number(_ value: JSONValue?) -> UInt64 { value?.uint64 ?? 0 }
}
