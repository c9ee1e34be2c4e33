// prism.v1.Prism/Generate: decodes a GenerateRequest into the plugin host's values, runs it
// through the Generator (plan → adapt → plugin) and streams GenerateEvents, `routed` first;
// ProviderFailures become the gRPC statuses of API.md.
import Foundation
import NIOCore
import PrismProto
import PrismProviders
import PrismRPC

enum GenerateService {
    /// The serverStreaming handler of Generate.
    static func handler(_ generator: Generator) -> RPCHandler {
        .serverStreaming { body, context, writer in
            let message = try decodeRequest(prism__v1__generate_request__init, body)
            let request = try withExtendedLifetime(message) { try generationRequest(message.pointee) }
            try await relay(request, generator, context, writer)
        }
    }

    /// Runs `request` under the call's deadline and writes its outputs as GenerateEvents (Generate,
    /// Query); `adjust` may rewrite an output first (Query names its retrieval in `routed`).
    static func relay(_ request: GenerationRequest, _ generator: Generator, _ context: ServerCallContext, _ writer: ResponseWriter,
                      adjust: @escaping @Sendable (GenerationOutput) -> GenerationOutput = { $0 }) async throws {
        var request = request
        request.deadline = deadline(context)
        do {
            // Events are relayed on the stream's event loop, where their writes go.
            try await generator.generate(request, relayExecutor: EventLoopTaskExecutor(context.eventLoop)) { output in
                try await write(adjust(output), to: writer)
            }
        } catch let failure as ProviderFailure {
            throw rpcError(failure, context)
        }
    }

    /// The call's deadline as the plugin host takes it.
    static func deadline(_ context: ServerCallContext) -> Date? {
        guard let deadline = context.deadline else { return nil }
        return Date().addingTimeInterval(Double((deadline - NIODeadline.now()).nanoseconds) / 1e9)
    }

    /// Sends one output as a GenerateEvent (text deltas, the most frequent, without a copy).
    nonisolated(nonsending)
    static func write(_ output: GenerationOutput, to writer: ResponseWriter) async throws {
        if case .event(.text(let text)) = output, let size = textEventSize(text) {
            try await writer.write(size: size) { writeTextEvent(text, into: &$0) }
        } else {
            try await writer.write(encode(output))
        }
    }

    /// A ProviderFailure as the client's status; UNAVAILABLE carries `retry-after-ms` when known.
    static func rpcError(_ failure: ProviderFailure, _ context: ServerCallContext) -> RPCError {
        if failure.retryAfterMilliseconds > 0 { context.addTrailer("retry-after-ms", "\(failure.retryAfterMilliseconds)") }
        return RPCError(statusCode(failure), failure.message)
    }

    /// The gRPC code a ProviderFailure ends a call with (also a batch item's error code).
    static func statusCode(_ failure: ProviderFailure) -> StatusCode {
        switch failure.code {
        case .invalidArgument: return .invalidArgument
        case .failedPrecondition: return .failedPrecondition
        case .resourceExhausted: return .resourceExhausted
        case .unavailable: return .unavailable
        case .deadlineExceeded: return .deadlineExceeded
        case .cancelled: return .cancelled
        case .internalError: return .internal
        case .unimplemented: return .unimplemented
        case .unknown: return .unknown
        case .permissionDenied: return .permissionDenied
        }
    }

    // MARK: - prism.v1 → host values

    static func generationRequest(_ r: Prism__V1__GenerateRequest) throws -> GenerationRequest {
        var request = GenerationRequest(messages: try elements(r.messages, r.n_messages).enumerated().map { index, m in
            ChatMessage(role: Role(rawValue: Int(m.pointee.role.rawValue)) ?? .user,
                        parts: try elements(m.pointee.parts, m.pointee.n_parts).map { try part($0.pointee, "messages[\(index)]") })
        })
        guard request.messages.contains(where: { !$0.parts.isEmpty }) else {
            throw RPCError(.invalidArgument, "messages: the request has no content")
        }
        request.system = String(protoC: r.system)
        request.tools = elements(r.tools, r.n_tools).map {
            ToolSpec(name: String(protoC: $0.pointee.name), description: String(protoC: $0.pointee.description),
                     inputSchemaJSON: String(protoC: $0.pointee.input_schema_json))
        }
        request.toolChoice = String(protoC: r.tool_choice)
        request.maxTokens = r.max_tokens
        request.temperature = r.temperature.map { $0.pointee.value }
        request.responseSchemaJSON = String(protoC: r.response_schema_json)
        request.outputs = Set(UnsafeBufferPointer(start: r.outputs, count: r.outputs == nil ? 0 : r.n_outputs).compactMap {
            Modality(rawValue: Int($0.rawValue))
        })
        request.route = try routeRequest(r.route)
        request.labels = labels(r.labels, r.n_labels)
        return request
    }

    /// A prism.v1.Route as the planner's; absent = any capable provider.
    static func routeRequest(_ route: UnsafeMutablePointer<Prism__V1__Route>?) throws -> RouteRequest {
        guard let route = route?.pointee else { return RouteRequest() }
        var request = RouteRequest(provider: String(protoC: route.provider), model: String(protoC: route.model),
                                   fallbacks: UnsafeBufferPointer(start: route.fallbacks, count: route.fallbacks == nil ? 0 : route.n_fallbacks).map { String(protoC: $0) },
                                   nativeOnly: route.adaptation == PRISM__V1__ADAPTATION__ADAPTATION_NATIVE_ONLY)
        guard let cache = CachePolicy(rawValue: Int(route.cache.rawValue)) else {
            throw RPCError(.invalidArgument, "route.cache: \(route.cache.rawValue) is not a CachePolicy (DEFAULT, BYPASS or REFRESH)")
        }
        request.cache = cache
        return request
    }

    /// A request's labels map.
    static func labels<Entry: LabelsEntry>(_ entries: UnsafeMutablePointer<UnsafeMutablePointer<Entry>?>?, _ count: Int) -> [String: String] {
        var labels: [String: String] = [:]
        for entry in elements(entries, count) { labels[String(protoC: entry.pointee.key)] = String(protoC: entry.pointee.value) }
        return labels
    }

    /// One Part of a message (`field` names where it sits, for errors).
    static func part(_ p: Prism__V1__Part, _ field: String) throws -> ContentPart {
        switch p.kind_case {
        case PRISM__V1__PART__KIND_TEXT:
            return .text(String(protoC: p.text))
        case PRISM__V1__PART__KIND_MEDIA:
            guard let m = p.media?.pointee else { throw RPCError(.invalidArgument, "\(field).parts.media is empty") }
            let uri = String(protoC: m.uri)
            switch (m.data.len == 0, uri.isEmpty) {
            case (true, true): throw RPCError(.invalidArgument, "\(field): Media has neither data nor uri")
            case (false, false): throw RPCError(.invalidArgument, "\(field): Media has both data and uri; set one")
            default: break
            }
            // A uri is fetched by the Generator (MediaFetcher) before planning.
            return .media(MediaInput(mimeType: String(protoC: m.mime_type), data: Data([UInt8](protoC: m.data)), name: String(protoC: m.name), uri: uri))
        case PRISM__V1__PART__KIND_TOOL_CALL:
            let t = p.tool_call!.pointee
            return .toolCall(id: String(protoC: t.id), name: String(protoC: t.name), argumentsJSON: String(protoC: t.arguments_json))
        case PRISM__V1__PART__KIND_TOOL_RESULT:
            let t = p.tool_result!.pointee
            return .toolResult(toolCallID: String(protoC: t.tool_call_id),
                               content: try elements(t.content, t.n_content).map { try part($0.pointee, field + ".tool_result") },
                               isError: t.is_error != 0)
        default:
            throw RPCError(.invalidArgument, "\(field): a Part with nothing set")
        }
    }

    // MARK: - host values → prism.v1.GenerateEvent

    static func encode(_ output: GenerationOutput) -> ByteBuffer {
        if case .event(.text(let text)) = output, let size = textEventSize(text) {
            var buffer = ByteBufferAllocator().buffer(capacity: size)
            writeTextEvent(text, into: &buffer)
            return buffer
        }
        let b = ProtoBuilder()
        let e = b.message(prism__v1__generate_event__init)
        switch output {
        case .routed(let info):
            let r = b.routeInfo(info)
            e.pointee.event_case = PRISM__V1__GENERATE_EVENT__EVENT_ROUTED
            e.pointee.routed = r
        case .event(.text(let text)):
            let t = b.message(prism__v1__text_delta__init)
            t.pointee.text = b.string(text)
            e.pointee.event_case = PRISM__V1__GENERATE_EVENT__EVENT_TEXT
            e.pointee.text = t
        case let .event(.toolCall(id, name, arguments)):
            let t = b.message(prism__v1__tool_call__init)
            t.pointee.id = b.string(id)
            t.pointee.name = b.string(name)
            t.pointee.arguments_json = b.string(arguments)
            e.pointee.event_case = PRISM__V1__GENERATE_EVENT__EVENT_TOOL_CALL
            e.pointee.tool_call = t
        case let .event(.media(mimeType, data, last)):
            let m = b.message(prism__v1__media_chunk__init)
            m.pointee.mime_type = b.string(mimeType)
            m.pointee.data = data.withUnsafeBytes { b.bytes($0) }
            m.pointee.last = last ? 1 : 0
            e.pointee.event_case = PRISM__V1__GENERATE_EVENT__EVENT_MEDIA
            e.pointee.media = m
        case .event(.usage(let usage)):
            let u = b.usage(usage)
            e.pointee.event_case = PRISM__V1__GENERATE_EVENT__EVENT_USAGE
            e.pointee.usage = u
        case .event(.finished(let reason)):
            let f = b.message(prism__v1__finish__init)
            f.pointee.stop_reason = Prism__V1__StopReason(rawValue: UInt32(reason))
            e.pointee.event_case = PRISM__V1__GENERATE_EVENT__EVENT_FINISHED
            e.pointee.finished = f
        case .event(.error), .event(.batchStatus), .event(.batchResult):
            // Retry details stay inside the host, and the generator drops batch answers.
            break
        }
        return encodeResponse(b, e)
    }
}

extension GenerateService {
    // GenerateEvent{text: TextDelta{text}}, the message a stream sends most, is written straight
    // into its buffer (field 2 holding field 1, both length-delimited) instead of through
    // protobuf-c structs: the same bytes protobuf-c writes, an empty text included.

    /// The encoded size of a text event; nil for a text holding a NUL, which protobuf-c's copy
    /// of a C string cuts short: such a rare text keeps that behaviour through `encode`.
    static func textEventSize(_ text: String) -> Int? {
        var text = text
        let count = text.utf8.count
        if count > 0, text.withUTF8({ memchr($0.baseAddress!, 0, count) }) != nil { return nil }
        let delta = count == 0 ? 0 : 1 + varintSize(count) + count
        return 1 + varintSize(delta) + delta
    }

    /// Appends the text event (its size is `textEventSize(text)`).
    static func writeTextEvent(_ text: String, into buffer: inout ByteBuffer) {
        let count = text.utf8.count
        let delta = count == 0 ? 0 : 1 + varintSize(count) + count
        let headerSize = 1 + varintSize(delta) + (count == 0 ? 0 : 1 + varintSize(count))
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: headerSize) { out in
            var k = 0
            func put(_ byte: UInt8) { out[k] = byte; k += 1 }
            func varint(_ value: Int) {
                var v = UInt(value)
                while v >= 0x80 {
                    put(UInt8(truncatingIfNeeded: v) | 0x80)
                    v >>= 7
                }
                put(UInt8(v))
            }
            put(2 << 3 | 2)
            varint(delta)
            if count > 0 {
                put(1 << 3 | 2)
                varint(count)
            }
            return k
        }
        buffer.writeString(text)
    }

    private static func varintSize(_ v: Int) -> Int { v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x20_0000 ? 3 : v < 0x1000_0000 ? 4 : 5 }
}

/// The non-NULL elements of a protobuf-c repeated message field.
func elements<Element>(_ array: UnsafeMutablePointer<UnsafeMutablePointer<Element>?>?, _ count: Int) -> [UnsafeMutablePointer<Element>] {
    UnsafeBufferPointer(start: array, count: array == nil ? 0 : count).compactMap { $0 }
}

/// An entry of a request's `map<string, string> labels`, whatever message holds it.
protocol LabelsEntry {
    var key: UnsafeMutablePointer<CChar>! { get }
    var value: UnsafeMutablePointer<CChar>! { get }
}

extension Prism__V1__GenerateRequest__LabelsEntry: LabelsEntry {}
extension Prism__V1__ExtractRequest__LabelsEntry: LabelsEntry {}
