// Maps a ProviderRequest to the JSON body of :streamGenerateContent: contents with text and
// inline_data parts, functionCall / functionResponse, system_instruction, tools, generationConfig.
import Foundation
import PrismPluginKit

enum GeminiRequest {
    static func body(for request: ProviderRequest) throws -> Data {
        var names: [String: String] = [:]  // tool call id → function name, for functionResponse
        var contents: [[String: Any]] = []
        for message in request.messages {
            var parts: [[String: Any]] = []
            for part in message.parts {
                switch part {
                case .text(let text):
                    parts.append(["text": text])
                case let .media(mime, data, _):
                    parts.append(["inline_data": ["mime_type": mime, "data": data.base64EncodedString()]])
                case let .toolCall(id, name, arguments):
                    names[id] = name
                    let args = (try? JSONSerialization.jsonObject(with: Data(arguments.utf8))) ?? [String: Any]()
                    parts.append(["functionCall": ["name": name, "args": args]])
                case let .toolResult(id, content, isError):
                    let text = content.compactMap { if case .text(let t) = $0 { return t } else { return nil } }.joined(separator: "\n")
                    parts.append(["functionResponse": ["name": names[id] ?? id, "response": [isError ? "error" : "result": text]]])
                }
            }
            guard !parts.isEmpty else { continue }
            contents.append(["role": message.role == .assistant ? "model" : "user", "parts": parts])
        }
        var body: [String: Any] = ["contents": contents]
        if !request.system.isEmpty { body["system_instruction"] = ["parts": [["text": request.system]]] }
        var generation: [String: Any] = [:]
        if request.maxTokens > 0 { generation["maxOutputTokens"] = Int(request.maxTokens) }
        if let t = request.temperature { generation["temperature"] = Double(t) }
        if !request.responseSchemaJSON.isEmpty {
            generation["responseMimeType"] = "application/json"
            generation["responseJsonSchema"] = try json(request.responseSchemaJSON, what: "response schema")
        }
        if !generation.isEmpty { body["generationConfig"] = generation }
        if !request.tools.isEmpty {
            body["tools"] = [["functionDeclarations": try request.tools.map { tool -> [String: Any] in
                ["name": tool.name, "description": tool.description, "parameters": try json(tool.inputSchemaJSON, what: "tool \(tool.name) schema")]
            }]]
            let mode: String? = ["": nil, "auto": "AUTO", "any": "ANY", "none": "NONE"][request.toolChoice] ?? "ANY"
            if let mode {
                var config: [String: Any] = ["mode": mode]
                if !["", "auto", "any", "none"].contains(request.toolChoice) { config["allowedFunctionNames"] = [request.toolChoice] }
                body["toolConfig"] = ["functionCallingConfig": config]
            }
        }
        return try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .withoutEscapingSlashes])
    }

    private static func json(_ text: String, what: String) throws -> Any {
        guard let value = try? JSONSerialization.jsonObject(with: Data(text.utf8)) else {
            throw CallFailure(.invalidArgument, "\(what) is not valid JSON")
        }
        return value
    }
}
