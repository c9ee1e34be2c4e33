// Maps a ProviderRequest to the JSON body of :streamGenerateContent (or to one request of a
// batchGenerateContent): contents with text, inline_data and file_data parts, functionCall /
// functionResponse, system_instruction, tools, and generationConfig (with the response schema in
// the field the settings chose).
import Foundation
import PrismPluginKit

/// Where a medium sits in the request: message and part index (top-level parts only).
struct MediaPosition: Hashable {
    var message: Int
    var part: Int
}

/// A medium uploaded through the Files API, sent as file_data instead of inline_data.
struct UploadedFile {
    var uri: String
    var mimeType: String
}

enum GeminiRequest {
    /// Every top-level medium of the request, in order.
    static func media(of request: ProviderRequest) -> [(position: MediaPosition, mimeType: String, data: Data, name: String)] {
        var found: [(MediaPosition, String, Data, String)] = []
        for (m, message) in request.messages.enumerated() {
            for (p, part) in message.parts.enumerated() {
                if case let .media(mime, data, name) = part { found.append((MediaPosition(message: m, part: p), mime, data, name)) }
            }
        }
        return found
    }

    static func body(for request: ProviderRequest, files: [MediaPosition: UploadedFile], schemaField: String) throws -> Data {
        var payload = JSONBody()
        let body = try object(for: request, files: files, schemaField: schemaField, payload: &payload)
        return try payload.serialize(body)
    }

    /// The GenerateContentRequest as an object whose inline media are placeholders in `payload`.
    static func object(for request: ProviderRequest, files: [MediaPosition: UploadedFile], schemaField: String,
                       payload: inout JSONBody) throws -> [String: Any] {
        var names: [String: String] = [:]  // tool call id → function name, for functionResponse
        var contents: [[String: Any]] = []
        for (m, message) in request.messages.enumerated() {
            var parts: [[String: Any]] = []
            for (p, part) in message.parts.enumerated() {
                switch part {
                case .text(let text):
                    parts.append(["text": text])
                case let .media(mime, data, _):
                    if let file = files[MediaPosition(message: m, part: p)] {
                        parts.append(["file_data": ["mime_type": file.mimeType, "file_uri": file.uri]])
                    } else {
                        parts.append(["inline_data": ["mime_type": mime, "data": payload.base64(of: data)]])
                    }
                case let .toolCall(id, name, arguments):
                    names[id] = name
                    let args = (try? JSONSerialization.jsonObject(with: Data(arguments.utf8))) ?? [String: Any]()
                    parts.append(["functionCall": ["name": name, "args": args]])
                case let .toolResult(id, content, isError):
                    let text = content.compactMap { if case .text(let t) = $0 { return t } else { return nil } }.joined(separator: "\n")
                    parts.append(["functionResponse": ["name": names[id] ?? id, "response": [isError ? "error" : "result": text]]])
                    // A functionResponse holds JSON only: the result's media (an agent's
                    // screenshots) ride beside it in the same turn, always inline.
                    for case let .media(mime, data, _) in content {
                        parts.append(["inline_data": ["mime_type": mime, "data": payload.base64(of: data)]])
                    }
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
            let schema = try json(request.responseSchemaJSON, what: "response schema")
            generation["responseMimeType"] = "application/json"
            generation[schemaField] = schemaField == "responseSchema" ? try GeminiSchema.openAPI(from: schema) : schema
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
        return body
    }

    static func json(_ text: String, what: String) throws -> Any {
        guard let value = try? JSONSerialization.jsonObject(with: Data(text.utf8)) else {
            throw CallFailure(.invalidArgument, "\(what) is not valid JSON")
        }
        return value
    }
}
