// Maps a ProviderRequest to the JSON body of POST /v1/messages (streaming) or to one Message
// Batches item's params (no "stream"): text, base64 image and PDF `document` blocks, tool_use /
// tool_result, tools, tool_choice, the system prompt, a response schema as a forced tool (SchemaTool), prompt cache marks (PromptCaching).
import Foundation
import PrismPluginKit

enum MessagesRequest {
    /// The body of a streamed POST /v1/messages.
    static func body(for request: ProviderRequest) throws -> Data {
        var payload = JSONBody()
        let body = try params(for: request, stream: true, payload: &payload)
        return try payload.serialize(body)
    }

    /// The Messages body as an object whose media are placeholders in `payload`. `stream` false
    /// leaves the field out, as a batch item's params must (the batch API refuses it).
    static func params(for request: ProviderRequest, stream: Bool, payload: inout JSONBody) throws -> [String: Any] {
        var messages: [[String: Any]] = []
        for message in request.messages {
            let role = message.role == .assistant ? "assistant" : "user"
            let blocks = PromptCaching.marked(try message.parts.map { try block($0, &payload) }, parts: message.parts)
            guard !blocks.isEmpty else { continue }
            // Consecutive turns of one role are merged: the API wants them alternating.
            if let last = messages.last, last["role"] as? String == role {
                messages[messages.count - 1]["content"] = (last["content"] as? [[String: Any]] ?? []) + blocks
            } else {
                messages.append(["role": role, "content": blocks])
            }
        }
        var body: [String: Any] = [
            "model": request.model,
            "max_tokens": request.maxTokens > 0 ? Int(request.maxTokens) : AnthropicDefaults.maxTokens,
            "messages": messages,
        ]
        if stream { body["stream"] = true }
        if !request.system.isEmpty { body["system"] = PromptCaching.system(request.system) }
        if let t = request.temperature { body["temperature"] = Double(t) }
        var tools = try request.tools.map { tool -> [String: Any] in
            var t: [String: Any] = ["name": tool.name, "input_schema": try json(tool.inputSchemaJSON, what: "tool \(tool.name) schema")]
            if !tool.description.isEmpty { t["description"] = tool.description }
            return t
        }
        if !tools.isEmpty {
            switch request.toolChoice {
            case "", "auto": break
            case "any", "none": body["tool_choice"] = ["type": request.toolChoice]
            case let name: body["tool_choice"] = ["type": "tool", "name": name]
            }
        }
        if !request.responseSchemaJSON.isEmpty {
            // The answer is the input of a tool made from the schema; without client tools it is
            // forced, with them the model may call theirs first and answer through it at the end.
            let answer = try SchemaTool.definition(schemaJSON: request.responseSchemaJSON)
            if tools.isEmpty { body["tool_choice"] = ["type": "tool", "name": answer["name"]!] }
            tools.append(answer)
        }
        if !tools.isEmpty { body["tools"] = tools }
        PromptCaching.limitBreakpoints(&body)
        return body
    }

    /// One content block; media become base64 placeholders in `payload`.
    private static func block(_ part: ProviderRequest.Part, _ payload: inout JSONBody) throws -> [String: Any] {
        switch part {
        case .text(let text):
            return ["type": "text", "text": text]
        case let .media(mime, data, name):
            let source: [String: Any] = ["type": "base64", "media_type": mime, "data": payload.base64(of: data)]
            if mime.hasPrefix("image/") { return ["type": "image", "source": source] }
            if mime == "application/pdf" {
                var doc: [String: Any] = ["type": "document", "source": source]
                if !name.isEmpty { doc["title"] = name }
                return doc
            }
            throw CallFailure(.invalidArgument, "anthropic cannot take \(mime) media ('\(name)')")
        case let .toolCall(id, name, arguments):
            return ["type": "tool_use", "id": id, "name": name, "input": (try? json(arguments, what: "")) ?? [String: Any]()]
        case let .toolResult(id, content, isError):
            var r: [String: Any] = ["type": "tool_result", "tool_use_id": id, "content": try content.map { try block($0, &payload) }]
            if isError { r["is_error"] = true }
            return r
        }
    }

    private static func json(_ text: String, what: String) throws -> Any {
        guard let value = try? JSONSerialization.jsonObject(with: Data(text.utf8)) else {
            throw CallFailure(.invalidArgument, "\(what) is not valid JSON")
        }
        return value
    }
}
