// The embedded usage store on a real SQLite file: rows added to per (key, model, day), filtered
// by key and first day, ordered as `prism usage` prints them, and kept across a reopen.
import Foundation
import XCTest
@testable import PrismStore

final class SQLiteUsageStoreTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "prism-usage-\(UUID().uuidString)"
        try DataDirectory.prepare(folder)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: folder)
    }

    private func record(_ key: String, _ model: String, _ day: String, requests: Int64 = 1, input: Int64 = 10, output: Int64 = 5, cost: Int64 = 100) -> UsageRecord {
        UsageRecord(key: key, model: model, day: day, requests: requests, inputTokens: input, outputTokens: output, costMicros: cost)
    }

    /// The day of a record is the UTC calendar day, as Foundation's Gregorian calendar has it,
    /// at every hour from 1900 to 2200 (leap years, century rules, before 1970).
    func testDayIsTheUTCCalendarDay() {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var date = calendar.date(from: DateComponents(year: 1900, month: 1, day: 1))!
        let end = calendar.date(from: DateComponents(year: 2200, month: 1, day: 1))!
        while date < end {
            let parts = calendar.dateComponents([.year, .month, .day], from: date)
            let expected = String(format: "%04d-%02d-%02d", parts.year!, parts.month!, parts.day!)
            let got = UsageRecord.day(of: date)
            if got != expected { return XCTFail("\(date): \(got), expected \(expected)") }
            date += 3_600 * 23 + 59  // a different hour of the day each time
        }
    }

    func testRowsAddUpPerKeyModelAndDay() async throws {
        let usage = SQLiteUsageStore(store: try EmbeddedStore(directory: folder))
        try await usage.add(record("alice", "openai/gpt-4o", "2026-12-05"))
        try await usage.add(record("alice", "openai/gpt-4o", "2026-12-06"))
        try await usage.add(record("alice", "openai/gpt-4o", "2026-12-06", requests: 0, input: 7, output: 3, cost: 50))
        try await usage.add(record("bob", "anthropic/claude-sonnet-4-5", "2026-12-06"))
        try await usage.add(record("", "openai/gpt-4o", "2026-12-06"))
        let all = try await usage.rows(key: nil, since: nil)
        XCTAssertEqual(all.map { "\($0.day) \($0.key) \($0.model)" }, [
            "2026-12-05 alice openai/gpt-4o", "2026-12-06  openai/gpt-4o",
            "2026-12-06 alice openai/gpt-4o", "2026-12-06 bob anthropic/claude-sonnet-4-5",
        ])
        XCTAssertEqual(all[2], record("alice", "openai/gpt-4o", "2026-12-06", requests: 1, input: 17, output: 8, cost: 150))
        let alice = try await usage.rows(key: "alice", since: "2026-12-06")
        XCTAssertEqual(alice.count, 1)
        let unnamed = try await usage.rows(key: "", since: nil)
        XCTAssertEqual(unnamed.map(\.key), [""])

        let reopened = SQLiteUsageStore(store: try EmbeddedStore(directory: folder))
        let again = try await reopened.rows(key: nil, since: nil)
        XCTAssertEqual(again, all)
    }

    func testConcurrentAddsAreNotLost() async throws {
        let usage = SQLiteUsageStore(store: try EmbeddedStore(directory: folder))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<50 { group.addTask { try await usage.add(self.record("k", "m/x", "2026-12-06")) } }
            try await group.waitForAll()
        }
        let rows = try await usage.rows(key: "k", since: nil)
        XCTAssertEqual(rows.first?.requests, 50)
        XCTAssertEqual(rows.first?.inputTokens, 500)
    }
}
