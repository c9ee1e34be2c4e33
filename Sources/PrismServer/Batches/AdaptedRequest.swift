// A vendor-lane batch item is adapted at submit, as Generate adapts a request for its model (media
// fetched, images fitted, PDFs paged, ...), and stored adapted: a restart never fits or fetches it
// again. This file writes such a request back as a prism.v1.GenerateRequest (the inverse of
// GenerateService.generationRequest), routed to that model alone.
import Foundation
import PrismProto
import PrismProviders

enum AdaptedRequest {
    /// The encoded GenerateRequest of `request`, adapted for and routed to `model` alone.
    static func encode(_ request: GenerationRequest, model: String) -> Data {
        let b = ProtoBuilder()
        let r = b.message(prism__v1__generate_request__init)
        let messages = request.messages.map { m -> UnsafeMutablePointer<Prism__V1__Message> in
            let message = b.message(prism__v1__message__init)
            message.pointee.role = Prism__V1__Role(rawValue: UInt32(m.role.rawValue))
            let parts = m.parts.map { part($0, in: b) }
            message.pointee.n_parts = parts.count
            message.pointee.parts = b.array(parts)
            return message
        }
        r.pointee.n_messages = messages.count
        r.pointee.messages = b.array(messages)
        r.pointee.system = b.string(request.system)
        let tools = request.tools.map { spec -> UnsafeMutablePointer<Prism__V1__Tool> in
            let tool = b.message(prism__v1__tool__init)
            tool.pointee.name = b.string(spec.name)
            tool.pointee.description = b.string(spec.description)
            tool.pointee.input_schema_json = b.string(spec.inputSchemaJSON)
            return tool
        }
        r.pointee.n_tools = tools.count
        r.pointee.tools = b.array(tools)
        r.pointee.tool_choice = b.string(request.toolChoice)
        r.pointee.max_tokens = request.maxTokens
        if let temperature = request.temperature {
            let value = b.message(prism__v1__float_value__init)
            value.pointee.value = temperature
            r.pointee.temperature = value
        }
        r.pointee.response_schema_json = b.string(request.responseSchemaJSON)
        let outputs = request.outputs.sorted().map { Prism__V1__Modality(rawValue: UInt32($0.rawValue)) }
        r.pointee.n_outputs = outputs.count
        r.pointee.outputs = b.array(outputs)
        let route = b.message(prism__v1__route__init)
        route.pointee.model = b.string(model)
        route.pointee.cache = Prism__V1__CachePolicy(rawValue: UInt32(request.route.cache.rawValue))
        r.pointee.route = route
        let labels = request.labels.sorted { $0.key < $1.key }.map { key, value -> UnsafeMutablePointer<Prism__V1__GenerateRequest__LabelsEntry> in
            let entry = b.message(prism__v1__generate_request__labels_entry__init)
            entry.pointee.key = b.string(key)
            entry.pointee.value = b.string(value)
            return entry
        }
        r.pointee.n_labels = labels.count
        r.pointee.labels = b.array(labels)
        return Data(b.pack(r))
    }

    private static func part(_ part: ContentPart, in b: ProtoBuilder) -> UnsafeMutablePointer<Prism__V1__Part> {
        let p = b.message(prism__v1__part__init)
        switch part {
        case .text(let text):
            p.pointee.kind_case = PRISM__V1__PART__KIND_TEXT
            p.pointee.text = b.string(text)
        case .media(let input):
            let media = b.message(prism__v1__media__init)
            media.pointee.mime_type = b.string(input.mimeType)
            media.pointee.data = input.data.withUnsafeBytes { b.bytes($0) }
            media.pointee.name = b.string(input.name)
            p.pointee.kind_case = PRISM__V1__PART__KIND_MEDIA
            p.pointee.media = media
        case let .toolCall(id, name, arguments):
            let call = b.message(prism__v1__tool_call__init)
            call.pointee.id = b.string(id)
            call.pointee.name = b.string(name)
            call.pointee.arguments_json = b.string(arguments)
            p.pointee.kind_case = PRISM__V1__PART__KIND_TOOL_CALL
            p.pointee.tool_call = call
        case let .toolResult(id, content, isError):
            let result = b.message(prism__v1__tool_result__init)
            result.pointee.tool_call_id = b.string(id)
            let inner = content.map { self.part($0, in: b) }
            result.pointee.n_content = inner.count
            result.pointee.content = b.array(inner)
            result.pointee.is_error = isError ? 1 : 0
            p.pointee.kind_case = PRISM__V1__PART__KIND_TOOL_RESULT
            p.pointee.tool_result = result
        }
        return p
    }

    /// Whether `request` holds media anywhere (only such requests have anything to adapt).
    static func hasMedia(_ request: GenerationRequest) -> Bool {
        func inParts(_ parts: [ContentPart]) -> Bool {
            parts.contains { part in
                switch part {
                case .media: return true
                case .toolResult(_, let content, _): return inParts(content)
                default: return false
                }
            }
        }
        return request.messages.contains { inParts($0.parts) }
    }
}
