// Counts calls per method and status, calls in flight, and a latency histogram per method,
// for a metrics endpoint or a log line to read. Cheap: one lock per call start and end.
import NIOConcurrencyHelpers
import NIOCore

public final class MetricsInterceptor: ServerInterceptor {
    /// Upper bounds of the latency buckets, in milliseconds (the last bucket is unbounded).
    public static let bucketBoundsMs: [Double] = [1, 5, 10, 50, 100, 500, 1_000, 5_000, 30_000]

    public struct MethodStats: Sendable {
        /// The method's shape (`CallHead.callType`).
        public var callType = ""
        public var started = 0
        public var finishedByCode: [StatusCode: Int] = [:]
        public var latencyBuckets = [Int](repeating: 0, count: MetricsInterceptor.bucketBoundsMs.count + 1)
        /// Total time of the finished calls, in seconds (a histogram's `_sum`).
        public var latencySumSeconds = 0.0
        public var inFlight: Int { started - finishedByCode.values.reduce(0, +) }
    }

    private let stats = NIOLockedValueBox([String: MethodStats]())

    public init() {}

    public func accept(_ call: CallHead) throws {
        stats.withLockedValue {
            $0[call.path, default: MethodStats()].started += 1
            $0[call.path]!.callType = call.callType
        }
    }

    public func finished(_ call: CallHead, status: Status, elapsed: TimeAmount) {
        let ms = Double(elapsed.nanoseconds) / 1e6
        let bucket = Self.bucketBoundsMs.firstIndex { ms <= $0 } ?? Self.bucketBoundsMs.count
        stats.withLockedValue { all in
            all[call.path, default: MethodStats()].finishedByCode[status.code, default: 0] += 1
            all[call.path]!.latencyBuckets[bucket] += 1
            all[call.path]!.latencySumSeconds += ms / 1e3
        }
    }

    /// A copy of the counters, by method path.
    public func snapshot() -> [String: MethodStats] {
        stats.withLockedValue { $0 }
    }
}
