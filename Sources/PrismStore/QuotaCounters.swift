// Counters in fixed time windows, for rate limits and budgets: one per key, added to atomically
// and gone when their window has passed. In process by default; in Redis when configured, so every
// replica counts against the same numbers. The quota rules themselves live in the server.
import Foundation

/// One addition: `amount` (0 to read) to the counter `key`, which lives `lifetimeMilliseconds`
/// from its creation (its window and a margin).
public struct CounterIncrement: Sendable, Equatable {
    public var key: String
    public var amount: Int64
    public var lifetimeMilliseconds: Int64

    public init(key: String, amount: Int64, lifetimeMilliseconds: Int64) {
        self.key = key
        self.amount = amount
        self.lifetimeMilliseconds = lifetimeMilliseconds
    }
}

public protocol QuotaCounters: Sendable {
    /// Adds each increment to its counter (created at 0 when absent or expired) and returns the
    /// values after the additions, in order. Each addition is atomic against every other writer.
    func add(_ increments: [CounterIncrement]) async throws -> [Int64]
}

/// Counters of this process alone (no Redis): a dictionary under a lock, expired entries
/// dropped as they are met and in a sweep every `sweepEvery` additions.
public final class MemoryQuotaCounters: QuotaCounters, @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`: value and expiry by key, and additions since the last sweep.
    private var counters: [String: (value: Int64, expires: Date)] = [:]
    private var additions = 0
    /// Additions between sweeps of expired counters: keeps the dictionary at about the live windows.
    static let sweepEvery = 1024

    public init() {}

    public func add(_ increments: [CounterIncrement]) async throws -> [Int64] {
        let now = Date()
        return lock.withLock {
            additions += 1
            if additions >= Self.sweepEvery {
                additions = 0
                counters = counters.filter { $0.value.expires > now }
            }
            return increments.map { increment in
                var counter: (value: Int64, expires: Date) = counters[increment.key].flatMap { $0.expires > now ? $0 : nil }
                    ?? (0, now.addingTimeInterval(Double(increment.lifetimeMilliseconds) / 1000))
                counter.value += increment.amount
                counters[increment.key] = counter
                return counter.value
            }
        }
    }
}

/// Counters in Redis: one Lua script per call adds every increment (INCRBY) and sets the expiry
/// of a counter it created (PEXPIRE), so a check and its counting are one round trip and atomic.
public final class RedisQuotaCounters: QuotaCounters {
    private let pool: RedisPool
    /// Prefix of every counter key, so one Redis can hold other data beside them.
    public static let keyPrefix = "prism:quota:"

    public init(pool: RedisPool) {
        self.pool = pool
    }

    private static let script = """
        local out = {}
        for i, key in ipairs(KEYS) do
          out[i] = redis.call('INCRBY', key, ARGV[2 * i - 1])
          if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, ARGV[2 * i]) end
        end
        return out
        """

    public func add(_ increments: [CounterIncrement]) async throws -> [Int64] {
        guard !increments.isEmpty else { return [] }
        var arguments = ["EVAL", Self.script, String(increments.count)]
        arguments += increments.map { Self.keyPrefix + $0.key }
        for increment in increments { arguments += [String(increment.amount), String(max(1, increment.lifetimeMilliseconds))] }
        let reply = try await pool.command(arguments.map { Data($0.utf8) })
        guard case .array(let values) = reply, values.count == increments.count else {
            throw RedisError(unreachable: false, description: "quota script answered \(reply)")
        }
        return values.map { if case .integer(let v) = $0 { return v } else { return 0 } }
    }
}
