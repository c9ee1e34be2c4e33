// Wake-ups between replicas through PostgreSQL's LISTEN/NOTIFY: the batch store notifies in its writing
// transactions (delivered at commit), and each replica listens on one dedicated connection on a thread
// of its own, handing every payload to the batch signals (a batch id, or "" for new work).
import Foundation
import PrismStore

/// Sendable by hand: `stopped` is guarded by `lock`; the listening connection lives on the
/// listener's thread alone; everything else is immutable.
public final class PostgresNotifier: @unchecked Sendable {
    /// The one channel: payload "" is new work for the schedulers, else the batch whose results changed.
    public static let channel = "prism_batches"
    /// How long one wait for notifications lasts: the bound on noticing `stop()`.
    static let waitSeconds = 1.0

    private let url: String
    private let server: String
    private let deliver: @Sendable (String) -> Void
    private let lock = NSLock()
    // Guarded by `lock`.
    private var stopped = false

    /// `deliver` runs on the listener's thread, once per notification (and with "" after each
    /// reconnection, since notifications sent meanwhile were missed).
    public init(url: String, server: String, deliver: @escaping @Sendable (String) -> Void) {
        self.url = url
        self.server = server
        self.deliver = deliver
    }

    public func start() {
        let thread = Thread { [self] in listen() }
        thread.name = "prism.postgres-listen"
        thread.start()
    }

    public func stop() { lock.withLock { stopped = true } }

    private var isStopped: Bool { lock.withLock { stopped } }

    private func listen() {
        var connection: PostgresConnection?
        var backoff = PostgresLimits.firstBackoffSeconds
        while !isStopped {
            do {
                if connection?.isOpen != true {
                    let fresh = try PostgresConnection(url: url, server: server)
                    try fresh.exec("LISTEN \(Self.channel)")
                    connection = fresh
                    backoff = PostgresLimits.firstBackoffSeconds
                    deliver("")
                }
                for payload in try connection?.notifications(waitingUpTo: Self.waitSeconds) ?? [] { deliver(payload) }
            } catch {
                connection = nil
                Thread.sleep(forTimeInterval: backoff)
                backoff = min(backoff * 2, PostgresLimits.longestBackoffSeconds)
            }
        }
    }

    /// Sends `payload` on the channel from within `db`'s transaction (delivered when it commits).
    static func notify(_ db: PostgresConnection, _ payload: String) throws {
        try db.query("SELECT pg_notify($1, $2)", [.text(channel), .text(payload)])
    }
}
