// The events a plugin streams back, decoded from serialized prism.plugin.v1.ProviderEvent bytes
// on the plugin's thread (so a malformed event fails the call there, not in the service).
import Foundation
import PrismProto

/// What a call consumed.
public struct Usage: Sendable, Equatable {
    public var inputTokens: UInt64 = 0
    public var outputTokens: UInt64 = 0
    public var imageTokens: UInt64 = 0
    public var audioSeconds: Double = 0
    public var costUSDMicros: UInt64 = 0
    /// Input tokens read from / written to the vendor's prompt cache (not in `inputTokens`).
    public var cacheReadTokens: UInt64 = 0
    public var cacheWriteTokens: UInt64 = 0
    /// Batch results: the list price of these tokens less the batch price paid (`costUSDMicros`).
    public var savedUSDMicros: UInt64 = 0

    public init() {}

    /// Anthropic's prompt cache rates relative to the input price, the only vendor that reports
    /// cache tokens today (plugin.proto Usage): reads a tenth, writes 1.25 times.
    static let cacheReadPriceFactor = 0.1
    static let cacheWritePriceFactor = 1.25

    /// What this usage costs at `pricing`, in micro-dollars.
    func cost(at pricing: ModelPricing) -> UInt64 {
        let cached = Double(cacheReadTokens) * Self.cacheReadPriceFactor + Double(cacheWriteTokens) * Self.cacheWritePriceFactor
        return (inputTokens * pricing.inputPerMillion + outputTokens * pricing.outputPerMillion
                + UInt64((cached * Double(pricing.inputPerMillion)).rounded())) / 1_000_000
    }
}

/// One event of a plugin call.
public enum ProviderEvent: Sendable, Equatable {
    case text(String)
    case toolCall(id: String, name: String, argumentsJSON: String)
    case media(mimeType: String, data: Data, last: Bool)
    case usage(Usage)
    /// The stop reason's proto number (prism.v1.StopReason).
    case finished(stopReason: Int)
    /// Retry details of a failure that the plugin's finish will report.
    case error(message: String, retryable: Bool, retryAfterMilliseconds: UInt64, httpStatus: UInt32)
    /// ABI 1.2: a vendor batch's state, the answer to a batch submit, get or cancel.
    case batchStatus(BatchStatus)
    /// ABI 1.2: one item of an ended batch, the answers to a batch results call.
    case batchResult(BatchItemResult)

    /// Whether the event is content the client sees, after which a failure can no longer be
    /// retried or moved to another provider.
    public var isContent: Bool {
        switch self {
        case .text, .toolCall, .media: return true
        case .usage, .finished, .error, .batchStatus, .batchResult: return false
        }
    }

    /// Whether the event answers a batch call (status or item result) rather than a streamed one.
    public var isBatchAnswer: Bool {
        switch self {
        case .batchStatus, .batchResult: return true
        default: return false
        }
    }

    /// Bytes the event holds, for the per-call buffer limit.
    var byteCount: Int {
        switch self {
        case .text(let text): return text.utf8.count
        case let .toolCall(id, name, arguments): return id.utf8.count + name.utf8.count + arguments.utf8.count
        case .media(_, let data, _): return data.count
        case .error(let message, _, _, _): return message.utf8.count
        case .usage, .finished: return 16
        case .batchStatus(let s): return 64 + s.vendorBatchID.utf8.count + s.message.utf8.count
        case .batchResult(let r): return 16 + r.customID.utf8.count + r.message.utf8.count + r.events.reduce(0) { $0 + $1.byteCount }
        }
    }

    /// Decodes one serialized ProviderEvent; nil if the bytes are not one or carry no event.
    init?(serialized bytes: UnsafeRawBufferPointer) {
        guard let message = try? ProtoMessage(prism__plugin__v1__provider_event__init, bytes: bytes) else { return nil }
        let decoded = withExtendedLifetime(message) { ProviderEvent(message.pointee) }
        guard let decoded else { return nil }
        self = decoded
    }

    /// Copies one decoded event (and a batch result's nested events) out of protobuf-c memory.
    private init?(_ e: Prism__Plugin__V1__ProviderEvent) {
        switch e.event_case {
        case PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_TEXT:
            self = .text(String(protoC: e.text?.pointee.text))
        case PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_TOOL_CALL:
            guard let t = e.tool_call?.pointee else { return nil }
            self = .toolCall(id: String(protoC: t.id), name: String(protoC: t.name), argumentsJSON: String(protoC: t.arguments_json))
        case PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_MEDIA:
            guard let m = e.media?.pointee else { return nil }
            self = .media(mimeType: String(protoC: m.mime_type), data: Data([UInt8](protoC: m.data)), last: m.last != 0)
        case PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_USAGE:
            guard let u = e.usage?.pointee else { return nil }
            var usage = Usage()
            usage.inputTokens = u.input_tokens
            usage.outputTokens = u.output_tokens
            usage.imageTokens = u.image_tokens
            usage.audioSeconds = u.audio_seconds
            usage.costUSDMicros = u.cost_usd_micros
            usage.cacheReadTokens = u.cache_read_tokens
            usage.cacheWriteTokens = u.cache_write_tokens
            self = .usage(usage)
        case PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_FINISHED:
            self = .finished(stopReason: Int(e.finished?.pointee.stop_reason.rawValue ?? 1))
        case PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_ERROR:
            guard let x = e.error?.pointee else { return nil }
            self = .error(message: String(protoC: x.message), retryable: x.retryable != 0,
                          retryAfterMilliseconds: x.retry_after_ms, httpStatus: x.http_status)
        case PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_BATCH_STATUS:
            guard let b = e.batch_status?.pointee, let state = BatchState(rawValue: Int(b.state.rawValue)) else { return nil }
            self = .batchStatus(BatchStatus(
                vendorBatchID: String(protoC: b.vendor_batch_id), state: state, vendorState: String(protoC: b.vendor_state),
                total: Int(b.total), succeeded: Int(b.succeeded), failed: Int(b.failed), cancelled: Int(b.cancelled),
                expired: Int(b.expired), message: String(protoC: b.message)))
        case PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_BATCH_RESULT:
            guard let r = e.batch_result?.pointee else { return nil }
            var events: [ProviderEvent] = []
            for index in 0..<r.n_events {
                // A nested event the host cannot read makes the whole result unreadable.
                guard let nested = r.events[index], let event = ProviderEvent(nested.pointee) else { return nil }
                events.append(event)
            }
            self = .batchResult(BatchItemResult(customID: String(protoC: r.custom_id), events: events,
                                                status: Int32(bitPattern: r.status), message: String(protoC: r.message)))
        default:
            return nil
        }
    }
}
