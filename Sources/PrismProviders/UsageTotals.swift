// Tokens and cost consumed per provider model since the process started, as the plugins report
// them in their usage events; the Generator records every one, /metrics reads the totals.
import Foundation

/// Running totals of usage by model; thread-safe: `lock` guards `totals`.
public final class UsageTotals: @unchecked Sendable {
    public struct Totals: Sendable, Equatable {
        public var inputTokens: UInt64 = 0
        public var outputTokens: UInt64 = 0
        public var costUSDMicros: UInt64 = 0
    }

    /// A model as metrics label it: its provider and its `provider/model` name.
    public struct Key: Hashable, Sendable {
        public let provider: String
        public let model: String
    }

    private let lock = NSLock()
    private var totals: [Key: Totals] = [:]

    public init() {}

    func record(_ usage: Usage, model: ModelCapability) {
        let key = Key(provider: model.provider, model: model.name)
        lock.withLock {
            totals[key, default: Totals()].inputTokens &+= usage.inputTokens
            totals[key, default: Totals()].outputTokens &+= usage.outputTokens
            totals[key, default: Totals()].costUSDMicros &+= usage.costUSDMicros
        }
    }

    public func snapshot() -> [Key: Totals] {
        lock.withLock { totals }
    }
}
