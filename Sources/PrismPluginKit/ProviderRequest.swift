// A call's request as Swift values: prism.plugin.v1.ProviderRequest decoded with protobuf-c
// and copied out, so an adapter never touches C pointers.
import CProtobufC
import Foundation
import PrismProtoC

/// What the host asks of the plugin in one call; media is already fitted to the model's limits.
public struct ProviderRequest: Sendable {
    public enum Role: Int, Sendable { case unspecified = 0, user, assistant }

    public indirect enum Part: Sendable {
        case text(String)
        case media(mimeType: String, data: Data, name: String)
        case toolCall(id: String, name: String, argumentsJSON: String)
        case toolResult(toolCallID: String, content: [Part], isError: Bool)
    }

    public struct Message: Sendable {
        public var role: Role
        public var parts: [Part]
    }

    public struct Tool: Sendable {
        public var name: String
        public var description: String
        public var inputSchemaJSON: String
    }

    public var operation: Operation?
    public var model: String
    public var messages: [Message]
    public var system: String
    public var tools: [Tool]
    /// "auto" (or empty), "any", "none", or a tool name.
    public var toolChoice: String
    /// 0 = the model's default.
    public var maxTokens: UInt32
    public var temperature: Float?
    public var responseSchemaJSON: String
    public var deadline: Date?
    public var requestID: String
    public var options: [String: String]

    /// ABI 1.2: what to do with a vendor batch, for operation `.batch`.
    public var batch: BatchCall?
    /// ABI 1.3: the W3C trace context of the host's span for this call (empty when untraced).
    /// The kit sends it with every HTTP request of the call; plugins need not read it.
    public var traceparent: String
    public var tracestate: String

    /// Decodes serialized ProviderRequest bytes; nil if they are not one.
    public init?(serialized bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress,
              let r = prism__plugin__v1__provider_request__unpack(nil, bytes.count, base.assumingMemoryBound(to: UInt8.self))
        else { return nil }
        defer { prism__plugin__v1__provider_request__free_unpacked(r, nil) }
        self.init(r.pointee)
    }

    /// Copies a decoded request (and, for a batch, each of its items) out of protobuf-c memory.
    private init(_ v: Prism__Plugin__V1__ProviderRequest) {
        operation = Operation(rawValue: Int(v.operation.rawValue))
        model = Self.string(v.model)
        messages = Self.array(v.messages, v.n_messages).map { m in
            Message(role: Role(rawValue: Int(m.pointee.role.rawValue)) ?? .unspecified,
                    parts: Self.array(m.pointee.parts, m.pointee.n_parts).compactMap(Self.part))
        }
        system = Self.string(v.system)
        tools = Self.array(v.tools, v.n_tools).map {
            Tool(name: Self.string($0.pointee.name), description: Self.string($0.pointee.description),
                 inputSchemaJSON: Self.string($0.pointee.input_schema_json))
        }
        toolChoice = Self.string(v.tool_choice)
        maxTokens = v.max_tokens
        temperature = v.has_temperature != 0 ? v.temperature : nil
        responseSchemaJSON = Self.string(v.response_schema_json)
        deadline = v.deadline_unix_ms > 0 ? Date(timeIntervalSince1970: Double(v.deadline_unix_ms) / 1000) : nil
        requestID = Self.string(v.request_id)
        var options: [String: String] = [:]
        for e in Self.array(v.options, v.n_options) { options[Self.string(e.pointee.key)] = Self.string(e.pointee.value) }
        self.options = options
        traceparent = Self.string(v.traceparent)
        tracestate = Self.string(v.tracestate)
        batch = v.batch.map { b in
            BatchCall(action: BatchCall.Action(rawValue: Int(b.pointee.action.rawValue)),
                      items: Self.array(b.pointee.items, b.pointee.n_items).map { item in
                          BatchItem(customID: Self.string(item.pointee.custom_id),
                                    request: item.pointee.request.map { ProviderRequest($0.pointee) } ?? ProviderRequest())
                      },
                      vendorBatchID: Self.string(b.pointee.vendor_batch_id), displayName: Self.string(b.pointee.display_name))
        }
    }

    /// An empty request (a batch item the host sent without one).
    private init() {
        operation = nil
        model = ""
        messages = []
        system = ""
        tools = []
        toolChoice = ""
        maxTokens = 0
        temperature = nil
        responseSchemaJSON = ""
        deadline = nil
        requestID = ""
        options = [:]
        traceparent = ""
        tracestate = ""
    }

    private static func string(_ p: UnsafeMutablePointer<CChar>?) -> String { p.map { String(cString: $0) } ?? "" }

    private static func array<T>(_ p: UnsafeMutablePointer<UnsafeMutablePointer<T>?>?, _ n: Int) -> [UnsafeMutablePointer<T>] {
        guard let p else { return [] }
        return UnsafeBufferPointer(start: p, count: n).compactMap { $0 }
    }

    private static func part(_ p: UnsafeMutablePointer<Prism__Plugin__V1__Part>) -> Part? {
        let v = p.pointee
        switch v.kind_case {
        case PRISM__PLUGIN__V1__PART__KIND_TEXT:
            return .text(string(v.text))
        case PRISM__PLUGIN__V1__PART__KIND_MEDIA:
            guard let m = v.media?.pointee else { return nil }
            let data = m.data.data.map { Data(bytes: $0, count: m.data.len) } ?? Data()
            return .media(mimeType: string(m.mime_type), data: data, name: string(m.name))
        case PRISM__PLUGIN__V1__PART__KIND_TOOL_CALL:
            guard let t = v.tool_call?.pointee else { return nil }
            return .toolCall(id: string(t.id), name: string(t.name), argumentsJSON: string(t.arguments_json))
        case PRISM__PLUGIN__V1__PART__KIND_TOOL_RESULT:
            guard let t = v.tool_result?.pointee else { return nil }
            return .toolResult(toolCallID: string(t.tool_call_id), content: array(t.content, t.n_content).compactMap(part),
                               isError: t.is_error != 0)
        default:
            return nil
        }
    }
}
