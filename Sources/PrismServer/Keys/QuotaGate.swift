// Per-key quotas in fixed windows: requests per minute counted when a call starts; tokens per
// minute and US dollars per UTC day charged from the usage an answer reports when it ends, and
// checked when the next call starts. The counters are QuotaCounters: in Redis when configured
// (every replica counts against the same numbers), in this process otherwise.
//
// Overshoot bound: a budget is checked at admission and charged at the end, so calls admitted
// while the key was still under its token or dollar budget all run to completion. The most a key
// can pass its budget by is what the calls it had in flight when the budget was crossed spend
// (at most its concurrent calls × the largest answer each may produce). Requests per minute
// never overshoot: admission adds and checks in one atomic step.
import Foundation
import Logging
import PrismProviders
import PrismRPC
import PrismStore

/// A call refused for a quota: which limit, and when the window it is counted in ends.
struct QuotaRefusal: Error {
    let message: String
    let retryAfterMilliseconds: Int64
}

final class QuotaGate: Sendable {
    private let counters: any QuotaCounters
    /// With the counters unreachable: admit without counting (true), or refuse UNAVAILABLE (false).
    private let failOpen: Bool
    private let logger: Logger

    init(counters: any QuotaCounters, failOpen: Bool, logger: Logger) {
        self.counters = counters
        self.failOpen = failOpen
        self.logger = logger
    }

    static let minuteMilliseconds: Int64 = 60_000
    static let dayMilliseconds: Int64 = 86_400_000
    /// Counters outlive their window by this much, so one read at the window's end still finds it.
    static let counterMarginMilliseconds: Int64 = 60_000

    /// Counts a call of `key` and checks its limits; throws QuotaRefusal over one, or RPCError
    /// UNAVAILABLE when the counters cannot be reached (unless fail-open).
    func admit(_ key: APIKey, now: Date = Date()) async throws {
        let limits = key.limits
        guard !limits.isUnlimited else { return }
        let windows = Windows(now)
        var checks: [(limit: Int64, name: String, unit: String, retry: Int64, inclusive: Bool)] = []
        var increments: [CounterIncrement] = []
        if let rpm = limits.requestsPerMinute {
            increments.append(windows.minute("rpm", key.name, add: 1))
            // The count includes this call: over when past the limit.
            checks.append((rpm, "requests_per_minute", "\(rpm) per minute", windows.toNextMinute, false))
        }
        if let tpm = limits.tokensPerMinute {
            increments.append(windows.minute("tpm", key.name, add: 0))
            checks.append((tpm, "tokens_per_minute", "\(tpm) per minute", windows.toNextMinute, true))
        }
        if let usd = limits.usdMicrosPerDay {
            increments.append(windows.day("usd", key.name, add: 0))
            checks.append((usd, "usd_per_day", "$\(Double(usd) / 1e6) per UTC day", windows.toNextDay, true))
        }
        let values: [Int64]
        do {
            values = try await counters.add(increments)
        } catch {
            if failOpen {
                logger.warning("quotas: counters unreachable, admitting key '\(key.name)' uncounted (store.quota_fail_open): \(error)")
                return
            }
            throw RPCError(.unavailable, "quotas of API key '\(key.name)' cannot be checked: \(error)")
        }
        for (check, value) in zip(checks, values) where check.inclusive ? value >= check.limit : value > check.limit {
            throw QuotaRefusal(message: "API key '\(key.name)' is over its \(check.name) (\(check.unit)); retry in \(Self.seconds(check.retry)) s",
                               retryAfterMilliseconds: check.retry)
        }
    }

    /// Charges what an answer of `key` spent to its token and dollar windows of `now`. A failure
    /// is logged: the answer has been given, and the next admission reports the outage.
    func charge(_ key: APIKey, usage: Usage, now: Date = Date()) async {
        let windows = Windows(now)
        var increments: [CounterIncrement] = []
        let tokens = Int64(clamping: usage.inputTokens &+ usage.outputTokens)
        if key.limits.tokensPerMinute != nil, tokens > 0 { increments.append(windows.minute("tpm", key.name, add: tokens)) }
        if key.limits.usdMicrosPerDay != nil, usage.costUSDMicros > 0 {
            increments.append(windows.day("usd", key.name, add: Int64(clamping: usage.costUSDMicros)))
        }
        guard !increments.isEmpty else { return }
        do {
            _ = try await counters.add(increments)
        } catch {
            logger.warning("quotas: could not charge key '\(key.name)' \(tokens) tokens, \(usage.costUSDMicros) µ$: \(error)")
        }
    }

    private static func seconds(_ milliseconds: Int64) -> String {
        String(format: "%.1f", Double(milliseconds) / 1000)
    }

    /// The windows a moment falls in: its minute and its UTC day since the epoch.
    struct Windows {
        let milliseconds: Int64

        init(_ date: Date) {
            milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        }

        var toNextMinute: Int64 { minuteMilliseconds - milliseconds % minuteMilliseconds }
        var toNextDay: Int64 { dayMilliseconds - milliseconds % dayMilliseconds }

        func minute(_ kind: String, _ name: String, add amount: Int64) -> CounterIncrement {
            CounterIncrement(key: "\(kind):\(name):\(milliseconds / minuteMilliseconds)", amount: amount,
                             lifetimeMilliseconds: toNextMinute + counterMarginMilliseconds)
        }

        func day(_ kind: String, _ name: String, add amount: Int64) -> CounterIncrement {
            CounterIncrement(key: "\(kind):\(name):\(milliseconds / dayMilliseconds)", amount: amount,
                             lifetimeMilliseconds: toNextDay + counterMarginMilliseconds)
        }
    }
}
