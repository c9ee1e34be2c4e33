// Usage accounting as the services see it: what each API key spent per model and UTC day
// (requests, tokens, cost), added to when an answer ends and read by `prism usage`. The embedded
// implementation is SQLite; the shared one is PostgreSQL (issue 15), both behind this protocol.
import Foundation

/// One key's use of one model on one UTC day; also what `add` adds to that row.
public struct UsageRecord: Sendable, Equatable, Codable {
    /// The key's name from `auth.keys` ("" when auth is off or the key has no name).
    public var key: String
    /// The model that answered, as the provider reported it ("provider/model").
    public var model: String
    /// The UTC day, "YYYY-MM-DD".
    public var day: String
    public var requests: Int64
    public var inputTokens: Int64
    public var outputTokens: Int64
    /// Cost in millionths of a US dollar (Usage.cost_usd_micros).
    public var costMicros: Int64

    public init(key: String, model: String, day: String, requests: Int64, inputTokens: Int64,
                outputTokens: Int64, costMicros: Int64) {
        self.key = key
        self.model = model
        self.day = day
        self.requests = requests
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.costMicros = costMicros
    }

    /// The UTC day of `date` as rows name it.
    public static func day(of date: Date) -> String {
        // The proleptic Gregorian date of a day count (Hinnant's civil_from_days): exact, and a
        // small part of what a Calendar and a format string cost on every recorded answer.
        let z = Int((date.timeIntervalSince1970 / 86_400).rounded(.down)) + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153  // 0 = March
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func digits(_ n: Int, _ width: Int) -> String { String(repeating: "0", count: max(0, width - String(n).count)) + String(n) }
        return "\(digits(year, 4))-\(digits(month, 2))-\(digits(day, 2))"
    }
}

public protocol UsageStore: Sendable {
    /// Adds `record`'s counts to the row of its (key, model, day), creating it at zero first;
    /// atomic against other writers (other replicas included).
    func add(_ record: UsageRecord) async throws
    /// Rows, ordered by day, key, model; only `key`'s when given, only days >= `since` ("YYYY-MM-DD") when given.
    func rows(key: String?, since: String?) async throws -> [UsageRecord]
}
