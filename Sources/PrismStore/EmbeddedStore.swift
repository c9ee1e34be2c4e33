// The embedded store: one SQLite database in WAL mode in the data folder, schema migrated at open.
// SQLite calls block, so none runs on a caller's thread or an event loop: one writer connection
// lives on its own serial queue (writes are serialized there, as SQLite serializes them anyway),
// and a few reader connections each on theirs (WAL lets them read while the writer commits).
// Callers await; each continuation is resumed from the connection's queue, holding no lock.
import CSQLite
import Foundation

public final class EmbeddedStore: Sendable {
    /// The data folder and the database file in it.
    public let directory: String
    public let path: String
    private let writer: ConfinedConnection
    private let readers: [ConfinedConnection]
    private let nextReader = RoundRobin()

    /// Opens (creating) the database in `directory`, which must exist and be writable
    /// (DataDirectory.prepare), sets WAL mode and applies `migrations`. Blocks: call at startup.
    public init(directory: String, migrations: [Migration] = Schema.migrations,
                readConnections: Int = StoreLimits.readConnections) throws {
        self.directory = directory
        let path = directory + "/" + StoreLimits.databaseFileName
        self.path = path
        let db = try SQLiteConnection(path: path)
        let mode = try db.scalar("PRAGMA journal_mode = WAL")?.text
        guard mode == "wal" else { throw StoreError("the database \(path) cannot use WAL mode (got \(mode ?? "nothing")); is the folder on a network filesystem?") }
        // FULL: a commit the store reported is on disk, even across a power cut. Writes that may
        // be lost that way (cache entries) ask for NORMAL per transaction.
        try db.exec("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON")
        try Schema.migrate(db, migrations)
        writer = ConfinedConnection(db, label: "prism.store.writer")
        readers = try (0..<max(1, readConnections)).map { index in
            let reader = try SQLiteConnection(path: path)
            try reader.exec("PRAGMA query_only = ON")
            return ConfinedConnection(reader, label: "prism.store.reader-\(index)")
        }
    }

    /// Runs `body` in one write transaction on the writer's queue. `durable`: the commit is
    /// synced to disk before this returns (synchronous=FULL); otherwise it survives a crash of
    /// the process but may be lost with the machine's power (synchronous=NORMAL in WAL mode).
    public func write<T: Sendable>(durable: Bool = true, _ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await writer.run { db in
            try db.exec(durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
            return try db.transaction { try body(db) }
        }
    }

    /// Runs `body` on a reader connection (a consistent snapshot for its statements).
    public func read<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await readers[nextReader.next(readers.count)].run(body)
    }

    /// Waits for queued work to finish and checkpoints the WAL into the database file. The
    /// connections close when the store is released.
    public func close() {
        writer.queue.sync {
            _ = try? writer.connection.exec("PRAGMA wal_checkpoint(TRUNCATE)")
        }
        for reader in readers { reader.queue.sync {} }
    }
}

/// A connection and the serial queue that alone may use it.
private final class ConfinedConnection: @unchecked Sendable {
    // Used only on `queue`.
    let connection: SQLiteConnection
    let queue: DispatchQueue

    init(_ connection: SQLiteConnection, label: String) {
        self.connection = connection
        queue = DispatchQueue(label: label)
    }

    func run<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                dispatchPrecondition(condition: .onQueue(self.queue))
                continuation.resume(with: Result { try body(self.connection) })
            }
        }
    }
}

/// Picks readers in turn. Thread-safe: `lock` guards `counter`.
private final class RoundRobin: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`.
    private var counter = 0

    func next(_ count: Int) -> Int {
        lock.withLock {
            counter &+= 1
            return counter % count
        }
    }
}
