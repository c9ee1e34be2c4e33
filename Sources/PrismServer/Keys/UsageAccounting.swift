// Where the Generator's usage reports go: the key's token and dollar budgets are charged, and the
// (key, model, UTC day) row of the usage store is added to, before the call's status is sent, so
// `prism usage` shows a call as soon as its client has the answer.
import Foundation
import Logging
import PrismProviders
import PrismStore

final class UsageAccounting: UsageMeter {
    private let keys: KeyRing
    private let gate: QuotaGate
    private let store: any UsageStore
    private let logger: Logger

    init(keys: KeyRing, gate: QuotaGate, store: any UsageStore, logger: Logger) {
        self.keys = keys
        self.gate = gate
        self.store = store
        self.logger = logger
    }

    func record(key: String, model: String, requests: Int64, usage: Usage) async {
        let now = Date()
        if let apiKey = keys.named(key) { await gate.charge(apiKey, usage: usage, now: now) }
        let record = UsageRecord(key: key, model: model, day: UsageRecord.day(of: now), requests: requests,
                                 inputTokens: Int64(clamping: usage.inputTokens), outputTokens: Int64(clamping: usage.outputTokens),
                                 costMicros: Int64(clamping: usage.costUSDMicros))
        do {
            try await store.add(record)
        } catch {
            // The answer has been given; losing its row is reported, not turned into an error.
            logger.error("usage: could not record \(requests) request(s) of key '\(key)' on \(model): \(error)")
        }
    }
}
