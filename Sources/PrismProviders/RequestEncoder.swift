// Turns an adapted GenerationRequest into the serialized prism.plugin.v1.ProviderRequest that
// start_call receives; the only place the host builds plugin protobuf messages.
import Foundation
import PrismProto

enum RequestEncoder {
    /// The bytes of a ProviderRequest for `model` (the id without "provider/").
    static func encode(_ request: GenerationRequest, operation: Operation, model: String) -> [UInt8] {
        let b = ProtoBuilder()
        let r = message(request, operation: operation, model: model, b)
        traceContext(r, b)
        return b.pack(r)
    }

    /// The current span's W3C trace context, for the plugin to send on (see plugin.proto); only
    /// on the outer request: a batch's items are parts of one call.
    private static func traceContext(_ r: UnsafeMutablePointer<Prism__Plugin__V1__ProviderRequest>, _ b: ProtoBuilder) {
        let headers = ProviderTracing.currentTraceHeaders()
        guard let parent = headers["traceparent"] else { return }
        r.pointee.traceparent = b.string(parent)
        r.pointee.tracestate = b.string(headers["tracestate"] ?? "")
    }

    /// The bytes of an OPERATION_BATCH ProviderRequest for `model`: `action` with, for a submit,
    /// every item encoded as its own generate request.
    static func encode(_ action: BatchAction, model: String, requestID: String, deadline: Date?) -> [UInt8] {
        let b = ProtoBuilder()
        let r = b.message(prism__plugin__v1__provider_request__init)
        r.pointee.operation = PRISM__PLUGIN__V1__OPERATION__OPERATION_BATCH
        r.pointee.model = b.string(model)
        r.pointee.request_id = b.string(requestID)
        if let deadline { r.pointee.deadline_unix_ms = Int64(deadline.timeIntervalSince1970 * 1000) }
        let call = b.message(prism__plugin__v1__batch_call__init)
        switch action {
        case let .submit(items, displayName):
            call.pointee.action = PRISM__PLUGIN__V1__BATCH_CALL__ACTION__ACTION_SUBMIT
            let encoded = items.map { item -> UnsafeMutablePointer<Prism__Plugin__V1__BatchItem> in
                let i = b.message(prism__plugin__v1__batch_item__init)
                i.pointee.custom_id = b.string(item.customID)
                i.pointee.request = message(item.request, operation: .generate, model: model, b)
                return i
            }
            call.pointee.n_items = encoded.count
            call.pointee.items = b.array(encoded)
            call.pointee.display_name = b.string(displayName)
        case .get(let id):
            call.pointee.action = PRISM__PLUGIN__V1__BATCH_CALL__ACTION__ACTION_GET
            call.pointee.vendor_batch_id = b.string(id)
        case .results(let id):
            call.pointee.action = PRISM__PLUGIN__V1__BATCH_CALL__ACTION__ACTION_RESULTS
            call.pointee.vendor_batch_id = b.string(id)
        case .cancel(let id):
            call.pointee.action = PRISM__PLUGIN__V1__BATCH_CALL__ACTION__ACTION_CANCEL
            call.pointee.vendor_batch_id = b.string(id)
        }
        r.pointee.batch = call
        traceContext(r, b)
        return b.pack(r)
    }

    private static func message(_ request: GenerationRequest, operation: Operation, model: String,
                                _ b: ProtoBuilder) -> UnsafeMutablePointer<Prism__Plugin__V1__ProviderRequest> {
        let r = b.message(prism__plugin__v1__provider_request__init)
        r.pointee.operation = Prism__Plugin__V1__Operation(rawValue: UInt32(operation.rawValue))
        r.pointee.model = b.string(model)
        let messages = request.messages.map { message -> UnsafeMutablePointer<Prism__Plugin__V1__Message> in
            let m = b.message(prism__plugin__v1__message__init)
            m.pointee.role = Prism__Plugin__V1__Role(rawValue: UInt32(message.role.rawValue))
            let parts = message.parts.map { part($0, b) }
            m.pointee.n_parts = parts.count
            m.pointee.parts = b.array(parts)
            return m
        }
        r.pointee.n_messages = messages.count
        r.pointee.messages = b.array(messages)
        r.pointee.system = b.string(request.system)
        let tools = request.tools.map { tool -> UnsafeMutablePointer<Prism__Plugin__V1__Tool> in
            let t = b.message(prism__plugin__v1__tool__init)
            t.pointee.name = b.string(tool.name)
            t.pointee.description = b.string(tool.description)
            t.pointee.input_schema_json = b.string(tool.inputSchemaJSON)
            return t
        }
        r.pointee.n_tools = tools.count
        r.pointee.tools = b.array(tools)
        r.pointee.tool_choice = b.string(request.toolChoice)
        r.pointee.max_tokens = request.maxTokens
        if let temperature = request.temperature {
            r.pointee.has_temperature = 1
            r.pointee.temperature = temperature
        }
        r.pointee.response_schema_json = b.string(request.responseSchemaJSON)
        let outputs = request.outputs.sorted().map { Prism__Plugin__V1__Modality(rawValue: UInt32($0.rawValue)) }
        r.pointee.n_outputs = outputs.count
        r.pointee.outputs = b.array(outputs)
        if let deadline = request.deadline {
            r.pointee.deadline_unix_ms = Int64(deadline.timeIntervalSince1970 * 1000)
        }
        r.pointee.request_id = b.string(request.requestID)
        r.pointee.input_streamed = request.streamedAudio != nil ? 1 : 0
        let options = request.labels.sorted { $0.key < $1.key }.map { key, value -> UnsafeMutablePointer<Prism__Plugin__V1__ProviderRequest__OptionsEntry> in
            let entry = b.message(prism__plugin__v1__provider_request__options_entry__init)
            entry.pointee.key = b.string(key)
            entry.pointee.value = b.string(value)
            return entry
        }
        r.pointee.n_options = options.count
        r.pointee.options = b.array(options)
        return r
    }

    private static func part(_ part: ContentPart, _ b: ProtoBuilder) -> UnsafeMutablePointer<Prism__Plugin__V1__Part> {
        let p = b.message(prism__plugin__v1__part__init)
        switch part {
        case .text(let text):
            p.pointee.kind_case = PRISM__PLUGIN__V1__PART__KIND_TEXT
            p.pointee.text = b.string(text)
        case .media(let media):
            let m = b.message(prism__plugin__v1__media__init)
            m.pointee.mime_type = b.string(media.mimeType)
            m.pointee.data = media.data.withUnsafeBytes { b.bytes($0) }
            m.pointee.name = b.string(media.name)
            p.pointee.kind_case = PRISM__PLUGIN__V1__PART__KIND_MEDIA
            p.pointee.media = m
        case let .toolCall(id, name, arguments):
            let t = b.message(prism__plugin__v1__tool_call__init)
            t.pointee.id = b.string(id)
            t.pointee.name = b.string(name)
            t.pointee.arguments_json = b.string(arguments)
            p.pointee.kind_case = PRISM__PLUGIN__V1__PART__KIND_TOOL_CALL
            p.pointee.tool_call = t
        case let .toolResult(id, content, isError):
            let t = b.message(prism__plugin__v1__tool_result__init)
            t.pointee.tool_call_id = b.string(id)
            let parts = content.map { self.part($0, b) }
            t.pointee.n_content = parts.count
            t.pointee.content = b.array(parts)
            t.pointee.is_error = isError ? 1 : 0
            p.pointee.kind_case = PRISM__PLUGIN__V1__PART__KIND_TOOL_RESULT
            p.pointee.tool_result = t
        }
        return p
    }
}
