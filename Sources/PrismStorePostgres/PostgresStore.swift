// The shared store as the gateway uses it: one pool for the batch store, the document index and
// usage, its schema migrated at start (retried in the background while PostgreSQL cannot be
// reached, the stores refusing calls as unavailable meanwhile) and its reachability watched.
import Foundation
import PrismStore

public final class PostgresStore: Sendable {
    public let pool: PostgresPool
    public let batches: PostgresBatchStore
    public let index: PostgresDocumentIndex
    public let usage: PostgresUsageStore
    private let url: String
    private let tasks = TaskList()

    public init(url: String, chunkLeaseSeconds: TimeInterval = PostgresLimits.defaultChunkLeaseSeconds) {
        self.url = url
        pool = PostgresPool(url: url)
        batches = PostgresBatchStore(pool: pool, chunkLeaseSeconds: chunkLeaseSeconds)
        index = PostgresDocumentIndex(pool: pool)
        usage = PostgresUsageStore(pool: pool)
        pool.close("the PostgreSQL schema at \(pool.server) is not migrated yet")
    }

    /// Why the store cannot be used now (nil: it can): what /readyz shows.
    public var unavailableReason: String? { pool.unavailableReason }

    /// Migrates the schema, then opens the pool. A server that cannot be reached is tried again
    /// with backoff in the background (and `log` told); any other failure (a schema newer than
    /// this build) is thrown. `wake` gets the batch store's notifications from every replica.
    public func start(log: @escaping @Sendable (String) -> Void, wake: @escaping @Sendable (String) -> Void) async throws {
        tasks.add(pool.monitor())
        let notifier = PostgresNotifier(url: url, server: pool.server, deliver: wake)
        notifier.start()
        tasks.onStop { notifier.stop() }
        do {
            try await migrate()
        } catch let error as StoreError where error.isUnavailable {
            log("PostgreSQL: \(error.description); retrying in the background")
            tasks.add(Task {
                var wait = PostgresLimits.firstBackoffSeconds
                while !Task.isCancelled {
                    try? await Task.sleep(nanoseconds: UInt64(wait * 1_000_000_000))
                    do {
                        try await self.migrate()
                        log("PostgreSQL at \(self.pool.server) reached; schema current")
                        return
                    } catch let error as StoreError where error.isUnavailable {
                        wait = min(wait * 2, PostgresLimits.longestBackoffSeconds)
                    } catch {
                        log("PostgreSQL: \(error)")
                        return
                    }
                }
            })
        }
    }

    private func migrate() async throws {
        try await PostgresSchema.migrate(pool)
        pool.open()
    }

    public func stop() {
        tasks.stopAll()
    }
}

/// What to end at stop: background tasks and the listener. Thread-safe: `lock` guards `stops`.
private final class TaskList: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`.
    private var stops: [@Sendable () -> Void] = []

    func add(_ task: Task<Void, Never>) { onStop { task.cancel() } }
    func onStop(_ stop: @escaping @Sendable () -> Void) { lock.withLock { stops.append(stop) } }
    func stopAll() { lock.withLock { stops }.forEach { $0() } }
}
