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

    public init() {}
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

    /// Whether the event is content the client sees, after which a failure can no longer be
    /// retried or moved to another provider.
    public var isContent: Bool {
        switch self {
        case .text, .toolCall, .media: return true
        case .usage, .finished, .error: return false
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
        }
    }

    /// Decodes one serialized ProviderEvent; nil if the bytes are not one or carry no event.
    init?(serialized bytes: UnsafeRawBufferPointer) {
        guard let message = try? ProtoMessage(prism__plugin__v1__provider_event__init, bytes: bytes) else { return nil }
        let e = message.pointee
        var decoded: ProviderEvent?
        switch e.event_case {
        case PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_TEXT:
            decoded = .text(String(protoC: e.text?.pointee.text))
        case PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_TOOL_CALL:
            if let t = e.tool_call?.pointee {
                decoded = .toolCall(id: String(protoC: t.id), name: String(protoC: t.name), argumentsJSON: String(protoC: t.arguments_json))
            }
        case PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_MEDIA:
            if let m = e.media?.pointee {
                decoded = .media(mimeType: String(protoC: m.mime_type), data: Data([UInt8](protoC: m.data)), last: m.last != 0)
            }
        case PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_USAGE:
            if let u = e.usage?.pointee {
                var usage = Usage()
                usage.inputTokens = u.input_tokens
                usage.outputTokens = u.output_tokens
                usage.imageTokens = u.image_tokens
                usage.audioSeconds = u.audio_seconds
                usage.costUSDMicros = u.cost_usd_micros
                decoded = .usage(usage)
            }
        case PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_FINISHED:
            decoded = .finished(stopReason: Int(e.finished?.pointee.stop_reason.rawValue ?? 1))
        case PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_ERROR:
            if let x = e.error?.pointee {
                decoded = .error(message: String(protoC: x.message), retryable: x.retryable != 0,
                                 retryAfterMilliseconds: x.retry_after_ms, httpStatus: x.http_status)
            }
        default:
            decoded = nil
        }
        withExtendedLifetime(message) {}
        guard let decoded else { return nil }
        self = decoded
    }
}
