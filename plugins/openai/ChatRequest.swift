// Maps a ProviderRequest to the JSON body of POST /v1/chat/completions (streamed with usage, or not
// streamed for a batch line): text and image_url/input_audio/file parts, tool calls and results, tools,
// schema. Media go in as base64 spliced by JSONBody (serializing megabytes of base64 through
// JSONSerialization is slow).
import Foundation
import PrismPluginKit

enum ChatRequest {
    /// The request body, compact JSON on one line. `stream` asks for server-sent events with a
    /// usage chunk; without it the answer is one chat.completion object (as in a batch's output).
    static func body(for request: ProviderRequest, stream: Bool) throws -> Data {
        var media = JSONBody()
        var messages: [[String: Any]] = []
        if !request.system.isEmpty { messages.append(["role": "system", "content": request.system]) }
        let detail = request.options["detail"].flatMap { ["auto", "low", "high"].contains($0) ? $0 : nil } ?? "auto"
        for message in request.messages {
            messages += try map(message, detail: detail, media: &media)
        }
        var body: [String: Any] = [
            "model": request.model,
            "messages": messages,
            "stream": stream,
        ]
        if stream { body["stream_options"] = ["include_usage": true] }
        if request.maxTokens > 0 { body["max_tokens"] = Int(request.maxTokens) }
        if let t = request.temperature { body["temperature"] = Double(t) }
        if !request.tools.isEmpty {
            body["tools"] = try request.tools.map { tool -> [String: Any] in
                var function: [String: Any] = ["name": tool.name, "parameters": try json(tool.inputSchemaJSON, what: "tool \(tool.name) schema")]
                if !tool.description.isEmpty { function["description"] = tool.description }
                return ["type": "function", "function": function]
            }
            switch request.toolChoice {
            case "", "auto": break
            case "none": body["tool_choice"] = "none"
            case "any": body["tool_choice"] = "required"
            case let name: body["tool_choice"] = ["type": "function", "function": ["name": name]]
            }
        }
        if !request.responseSchemaJSON.isEmpty {
            // Strict where the schema allows it (StrictSchema.swift); otherwise best effort.
            let schema = try json(request.responseSchemaJSON, what: "response schema")
            body["response_format"] = ["type": "json_schema",
                                       "json_schema": ["name": "response", "schema": schema, "strict": StrictSchema.fits(schema)]]
        }
        return try media.serialize(body)
    }

    /// One Prism message as OpenAI messages: tool results become their own `tool` messages. A
    /// `tool` message takes text only, so the media of tool results (an agent's screenshots) go
    /// in the user message that follows them, each group introduced by the id of its tool call.
    private static func map(_ message: ProviderRequest.Message, detail: String, media body: inout JSONBody) throws -> [[String: Any]] {
        var out: [[String: Any]] = []
        var content: [[String: Any]] = []
        var toolMedia: [[String: Any]] = []
        var toolCalls: [[String: Any]] = []
        for part in message.parts {
            switch part {
            case .text(let text):
                content.append(["type": "text", "text": text])
            case let .media(mime, data, name):
                content.append(try media(mime: mime, data: data, name: name, detail: detail, body: &body))
            case let .toolCall(id, name, arguments):
                toolCalls.append(["id": id, "type": "function", "function": ["name": name, "arguments": arguments]])
            case let .toolResult(id, parts, _):
                var text = parts.compactMap { if case .text(let t) = $0 { return t } else { return nil } }.joined(separator: "\n")
                let media = try parts.compactMap { part -> [String: Any]? in
                    guard case let .media(mime, data, name) = part else { return nil }
                    return try self.media(mime: mime, data: data, name: name, detail: detail, body: &body)
                }
                if !media.isEmpty {
                    if text.isEmpty { text = "(the result is the media in the next user message)" }
                    toolMedia.append(["type": "text", "text": "[media returned by tool call \(id)]"])
                    toolMedia += media
                }
                out.append(["role": "tool", "tool_call_id": id, "content": text])
            }
        }
        content = toolMedia + content
        if message.role == .assistant {
            // Assistant content is a string; its tool calls ride beside it.
            let text = content.compactMap { $0["text"] as? String }.joined()
            var m: [String: Any] = ["role": "assistant", "content": text.isEmpty && !toolCalls.isEmpty ? NSNull() : text]
            if !toolCalls.isEmpty { m["tool_calls"] = toolCalls }
            out.insert(m, at: 0)
        } else if !content.isEmpty {
            out.append(["role": "user", "content": content])
        }
        return out
    }

    /// A medium as a content part: images as data URLs, audio as input_audio, PDFs as file parts.
    private static func media(mime: String, data: Data, name: String, detail: String, body: inout JSONBody) throws -> [String: Any] {
        let b64 = body.base64(of: data)  // a placeholder for the base64, without line breaks
        switch mime {
        case let m where m.hasPrefix("image/"):
            return ["type": "image_url", "image_url": ["url": "data:\(m);base64,\(b64)", "detail": detail]]
        case "audio/wav", "audio/x-wav", "audio/wave":
            return ["type": "input_audio", "input_audio": ["data": b64, "format": "wav"]]
        case "audio/mpeg", "audio/mp3":
            return ["type": "input_audio", "input_audio": ["data": b64, "format": "mp3"]]
        case "application/pdf":
            return ["type": "file", "file": ["filename": name.isEmpty ? "document.pdf" : name, "file_data": "data:application/pdf;base64,\(b64)"]]
        default:
            throw CallFailure(.invalidArgument, "openai cannot take \(mime) media ('\(name)')")
        }
    }

    private static func json(_ text: String, what: String) throws -> Any {
        guard let value = try? JSONSerialization.jsonObject(with: Data(text.utf8)) else {
            throw CallFailure(.invalidArgument, "\(what) is not valid JSON")
        }
        return value
    }
}
