// Per-model health as the gateway has seen it: consecutive failures, a cool-down after too many,
// and a latency average; the planner moves models in their cool-down to the back of the line.
import Foundation

public final class ProviderHealth: @unchecked Sendable {
    public struct Record: Sendable {
        public var consecutiveFailures = 0
        public var coolingDownUntil: Date?
        /// Exponentially weighted seconds per successful call.
        public var averageSeconds: Double?
        public var failures = 0
        public var successes = 0
    }

    private let lock = NSLock()
    private var records: [String: Record] = [:]
    private let failuresBeforeCooldown: Int
    private let cooldown: TimeInterval

    public init(failuresBeforeCooldown: Int = ProviderLimits.failuresBeforeCooldown, cooldownSeconds: Double = ProviderLimits.cooldownSeconds) {
        self.failuresBeforeCooldown = failuresBeforeCooldown
        self.cooldown = cooldownSeconds
    }

    public func succeeded(_ model: String, seconds: Double) {
        lock.withLock {
            var r = records[model] ?? Record()
            r.consecutiveFailures = 0
            r.coolingDownUntil = nil
            r.successes += 1
            r.averageSeconds = r.averageSeconds.map { $0 * 0.8 + seconds * 0.2 } ?? seconds
            records[model] = r
        }
    }

    public func failed(_ model: String) {
        lock.withLock {
            var r = records[model] ?? Record()
            r.consecutiveFailures += 1
            r.failures += 1
            if r.consecutiveFailures >= failuresBeforeCooldown { r.coolingDownUntil = Date().addingTimeInterval(cooldown) }
            records[model] = r
        }
    }

    /// Models in their cool-down now.
    public func coolingDown(at now: Date = Date()) -> Set<String> {
        lock.withLock { Set(records.filter { ($0.value.coolingDownUntil ?? .distantPast) > now }.keys) }
    }

    public func record(_ model: String) -> Record? { lock.withLock { records[model] } }
}
