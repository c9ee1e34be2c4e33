// The one error type of PrismMedia: every refusal names the limit or the reason, so the planner can
// tell a client "PDF has 1,200 pages, limit 1,000" instead of "failed".
import CVips
import Foundation

/// Why PrismMedia refused or failed to process an input.
public enum MediaError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The input is over a gateway limit (``MediaLimits``) or a target's byte budget.
    case limitExceeded(MediaLimit, actual: Int64, allowed: Int64)
    /// The bytes are not a format PrismMedia recognizes.
    case unrecognizedFormat
    /// The format was recognized but this operation does not take it (an MP3 given to the image fitter).
    case wrongKind(MediaFormat, expected: MediaKind)
    /// The format's only decoder is one the gateway blocks as untrusted (SVG via rsvg, ImageMagick).
    case blockedDecoder(MediaFormat, reason: String)
    /// Not built in this version; the message says what exactly.
    case notSupported(String)
    /// The input is truncated or corrupt; the decoder's message is kept.
    case corrupt(MediaFormat, detail: String)
    /// A PDF asks for a password.
    case encrypted
    /// A target that cannot be met (no accepted format can be produced, a page out of range, ...).
    case invalidTarget(String)
    /// A library failed where it should not have; the message is the library's.
    case libraryFailure(String)

    public var description: String {
        switch self {
        case let .limitExceeded(limit, actual, allowed):
            return "\(limit.rawValue) limit exceeded: \(actual) \(limit.unit), allowed \(allowed)"
        case .unrecognizedFormat:
            return "unrecognized media format"
        case let .wrongKind(format, expected):
            return "\(format.rawValue) is \(format.kind.rawValue), expected \(expected.rawValue)"
        case let .blockedDecoder(format, reason):
            return "\(format.rawValue) is refused: \(reason)"
        case let .notSupported(what):
            return "not supported: \(what)"
        case let .corrupt(format, detail):
            return "corrupt or truncated \(format.rawValue): \(detail)"
        case .encrypted:
            return "the PDF is encrypted (password protected)"
        case let .invalidTarget(why):
            return "invalid target: \(why)"
        case let .libraryFailure(message):
            return "media library failure: \(message)"
        }
    }
}

/// A wall-clock budget started when an operation begins; checked between steps (and armed on
/// libvips pipelines so a long evaluation is killed, not waited for).
struct TimeBudget {
    let limit: MediaLimit
    let seconds: Double
    let start = DispatchTime.now().uptimeNanoseconds

    var elapsedSeconds: Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }

    /// Deadline on glib's monotonic clock (microseconds), for libvips.
    var glibDeadline: Int64 {
        let remaining = seconds - elapsedSeconds
        return Int64(g_get_monotonic_time()) + Int64(max(0, remaining) * 1e6)
    }

    func check() throws {
        if elapsedSeconds > seconds { throw exceeded() }
    }

    func exceeded() -> MediaError {
        .limitExceeded(limit, actual: Int64(elapsedSeconds * 1000), allowed: Int64(seconds * 1000))
    }
}
