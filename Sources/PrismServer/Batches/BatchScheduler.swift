// The batch scheduler, one per process (PrismGateway starts and stops it). It owns no thread: one
// loop task and up to `concurrency` item tasks on Swift's global executor; the store's SQLite work
// runs on the store's writer and reader queues, and every plugin call on the plugin host's worker
// pool like any Generate (so batch work shares plugins.worker_threads with interactive calls, and
// `concurrency` keeps its share small). The loop, woken by BatchSignals or when a poll is due:
// leases local-lane items to free slots, sends pending vendor-lane items out in chunks
// (VendorChunks.swift), and polls the vendor batches that are due.
import Foundation
import Logging
import PrismProviders
import PrismRPC
import PrismStore

/// Safe: immutable after init but `tasks`, which `lock` guards; `slots` and `signals` guard their own state.
final class BatchScheduler: @unchecked Sendable {
    /// A lease on work (`batches.lease_seconds`): renewed every third of it while the work runs; a
    /// process that dies holding it lets another replica take the work over after at most this long
    /// plus a heartbeat (the shared store's case; the embedded store releases a dead process's
    /// leases at once, see SQLiteBatchStore).
    let leaseSeconds: TimeInterval
    /// Longest wait between two passes with nothing signalled: picks up what this process was not
    /// told about (a store shared with other processes) and bounds a missed wake-up.
    static let idleWakeSeconds: TimeInterval = 15
    /// A failing pass (the store unwritable, say) is retried after this long.
    static let errorBackoffSeconds: TimeInterval = 2
    /// How long one local item may run: a hung call must not hold a slot forever.
    static let itemTimeoutSeconds: TimeInterval = 600
    /// Runs of one item on the normal path before a passing failure (UNAVAILABLE: the provider
    /// down or rate-limited, after the Generator's own retries and fallbacks) is its result; each
    /// waits twice as long as the last, from `firstRetrySeconds` (or what the provider asked):
    /// 2, 4 and 8 s, a quarter of a minute for an outage to pass before the item fails.
    static let attemptsPerItem = 4
    static let firstRetrySeconds: TimeInterval = 2
    /// How often finished batches past retention are removed (more often for a short retention).
    static let retentionSweepSeconds: TimeInterval = 3600

    let store: any BatchStore
    let generator: Generator
    /// Extract items run through it on the normal call path (repair rounds need answers in turn).
    let extractor: Extractor
    let signals: BatchSignals
    let logger: Logger
    let concurrency: Int
    let retention: TimeInterval
    /// This process's name on the leases it takes: unique per replica (host, process and a random
    /// part, so a pid reused on another host or after a restart is never mistaken for this one).
    let owner = "prism-\(BatchScheduler.hostName)-\(getpid())-\(UUID().uuidString.prefix(8))"

    /// This machine's name as gethostname(2) has it (no DNS lookup, unlike ProcessInfo.hostName).
    static var hostName: String {
        var name = [CChar](repeating: 0, count: 256)
        return gethostname(&name, name.count - 1) == 0 ? String(cString: name) : "unknown-host"
    }
    private let slots: LocalSlots
    private let lock = NSLock()
    // Guarded by `lock`.
    private var tasks: [Task<Void, Never>] = []

    init(store: any BatchStore, extractor: Extractor, signals: BatchSignals, concurrency: Int, retention: TimeInterval,
         leaseSeconds: TimeInterval = 60, logger: Logger) {
        self.store = store
        self.leaseSeconds = leaseSeconds
        self.generator = extractor.generator
        self.extractor = extractor
        self.signals = signals
        self.concurrency = max(1, concurrency)
        self.retention = retention
        self.logger = logger
        // A freed slot wakes the loop to lease the next item.
        slots = LocalSlots(freed: { signals.notify(BatchSignals.work) })
    }

    /// Recovers what a dead process left, then runs the loop and the upkeep until `stop()`.
    func start() {
        let loop = Task { await self.run() }
        let upkeep = Task { await self.upkeep() }
        lock.withLock { tasks = [loop, upkeep] }
    }

    /// Stops the loop (a vendor call under way finishes first, see VendorChunks) and cancels
    /// running items, which stay leased: the next start runs them again.
    func stop() async {
        let running = lock.withLock { tasks }
        slots.stopping()
        for task in running { task.cancel() }
        for task in running { await task.value }
        await slots.drain()
    }

    private func run() async {
        // Nothing runs before what a dead process left is settled.
        while !Task.isCancelled {
            do {
                let found = try await store.recover(owner: owner, now: Date())
                if found != BatchRecovery() {
                    logger.notice("batches: recovered \(found.itemsReleased) items and \(found.chunksReleased) unsent chunks of a stopped process; \(found.chunksAbandoned) chunks caught mid-submit were failed, not resubmitted")
                }
                break
            } catch {
                logger.error("batches: recovery failed: \(error); retrying")
                try? await Task.sleep(nanoseconds: UInt64(Self.errorBackoffSeconds * 1_000_000_000))
            }
        }
        while !Task.isCancelled {
            let seen = signals.version(BatchSignals.work)
            var wait = Self.idleWakeSeconds
            do {
                try await fillLocalSlots()
                try await sendChunks()
                try await pollDue()
                if let due = try await store.nextDue(after: Date()) { wait = min(wait, max(0.01, due.timeIntervalSinceNow)) }
            } catch {
                if Task.isCancelled { break }
                logger.error("batches: scheduler pass failed: \(error)")
                wait = Self.errorBackoffSeconds
            }
            await signals.wait(BatchSignals.work, seen: seen, timeout: wait)
        }
    }

    /// Renews the leases of running items (the heartbeat), takes over work whose lease another
    /// replica let expire, and removes batches past retention.
    private func upkeep() async {
        var lastSweep = Date.distantPast
        while !Task.isCancelled {
            do {
                try await store.renewLeases(owner: owner, until: Date().addingTimeInterval(leaseSeconds))
                let found = try await store.recover(owner: owner, now: Date())
                if found != BatchRecovery() {
                    logger.notice("batches: took over \(found.itemsReleased) items and \(found.chunksReleased) unsent chunks whose lease expired; \(found.chunksAbandoned) chunks caught mid-submit were failed, not resubmitted")
                    signals.notify(BatchSignals.work)
                }
                if Date().timeIntervalSince(lastSweep) >= min(Self.retentionSweepSeconds, retention / 2) {
                    lastSweep = Date()
                    let removed = try await store.removeFinished(before: Date().addingTimeInterval(-retention))
                    if removed > 0 { logger.info("batches: removed \(removed) finished batches past retention") }
                }
            } catch {
                logger.error("batches: upkeep failed: \(error)")
            }
            try? await Task.sleep(nanoseconds: UInt64(min(leaseSeconds / 3, max(1, retention / 2)) * 1_000_000_000))
        }
    }

    // MARK: - the local lane

    private func fillLocalSlots() async throws {
        let free = concurrency - slots.count
        guard free > 0, !Task.isCancelled else { return }
        let items = try await store.claimLocal(owner: owner, limit: free, now: Date(), leaseUntil: Date().addingTimeInterval(leaseSeconds))
        for item in items {
            slots.start { await self.runLocal(item) }
        }
    }

    /// Runs one item through the normal call path and records its result; a run cut by the
    /// scheduler's stop records nothing (the item runs again after the restart).
    private func runLocal(_ item: ClaimedItem) async {
        let outcome: ItemOutcome
        let deadline = Date().addingTimeInterval(Self.itemTimeoutSeconds)
        do {
            if item.kind == BatchCodec.Kind.extract.rawValue {
                var (request, schema) = try BatchCodec.extraction(item.request)
                request.deadline = deadline
                let extraction = try await extractor.extract(request, schema: schema)
                outcome = ItemOutcome(seq: item.seq, state: .succeeded, result: BatchCodec.extractResult(item.customID, extraction))
            } else {
                var request = try BatchCodec.generationRequest(item.request)
                request.deadline = deadline
                let answer = AnswerCollector()
                try await generator.generate(request) { output in answer.take(output) }
                let result = answer.result
                outcome = ItemOutcome(seq: item.seq, state: .succeeded, result: BatchCodec.textResult(item.customID, text: result.text, usage: result.usage))
            }
        } catch {
            if slots.isStopping { return }
            // A provider down or rate-limited now may serve the item later: the batch has time.
            if let failure = error as? ProviderFailure, failure.code == .unavailable, item.attempts + 1 < Self.attemptsPerItem {
                let delay = max(Double(failure.retryAfterMilliseconds) / 1000, Self.firstRetrySeconds * pow(2, Double(item.attempts)))
                logger.info("batches: item \(item.customID) of batch \(item.batchID) retried in \(delay) s: \(failure.message)")
                do {
                    try await store.retryLater(batchID: item.batchID, seq: item.seq, notBefore: Date().addingTimeInterval(delay))
                    return
                } catch {
                    logger.error("batches: cannot put item \(item.customID) back for a retry: \(error)")
                }
            }
            let (code, message) = Self.status(of: error)
            outcome = ItemOutcome(seq: item.seq, state: .failed, result: BatchCodec.errorResult(item.customID, code: code, message: message))
        }
        await record(item.batchID, [outcome])
    }

    /// Stores outcomes of one batch and wakes its streams; retried while the store fails, since the
    /// answer cost a call (a process stopped meanwhile runs the item again instead).
    func record(_ batchID: String, _ outcomes: [ItemOutcome]) async {
        while !Task.isCancelled {
            do {
                try await store.finishItems(batchID: batchID, outcomes, now: Date())
                signals.notify(batchID)
                return
            } catch {
                logger.error("batches: cannot store results of batch \(batchID): \(error); retrying")
                try? await Task.sleep(nanoseconds: UInt64(Self.errorBackoffSeconds * 1_000_000_000))
            }
        }
    }

    /// An item's error as a gRPC code and message.
    static func status(of error: Error) -> (StatusCode, String) {
        switch error {
        case let failure as ProviderFailure: return (GenerateService.statusCode(failure), failure.message)
        case let rpc as RPCError: return (rpc.code, rpc.message)
        default: return (.internal, "\(error)")
        }
    }
}

/// The local items running now: their count (the loop fills free slots) and their tasks.
/// Thread-safe: `lock` guards `running` and `stopped`; `freed` is immutable.
private final class LocalSlots: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`.
    private var running: [UUID: Task<Void, Never>] = [:]
    private var stopped = false
    private let freed: @Sendable () -> Void

    init(freed: @escaping @Sendable () -> Void) { self.freed = freed }

    var count: Int { lock.withLock { running.count } }
    var isStopping: Bool { lock.withLock { stopped } }

    func start(_ body: @escaping @Sendable () async -> Void) {
        let id = UUID()
        lock.withLock {
            guard !stopped else { return }
            running[id] = Task {
                await body()
                self.finished(id)
            }
        }
    }

    private func finished(_ id: UUID) {
        _ = lock.withLock { running.removeValue(forKey: id) }
        freed()
    }

    func stopping() {
        let tasks = lock.withLock {
            stopped = true
            return Array(running.values)
        }
        for task in tasks { task.cancel() }
    }

    func drain() async {
        for task in lock.withLock({ Array(running.values) }) { await task.value }
    }
}
