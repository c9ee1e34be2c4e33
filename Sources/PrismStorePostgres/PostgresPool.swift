// A few libpq connections, each confined to its own serial queue (libpq blocks: never on an event loop),
// opened lazily and reopened after a loss with backoff. While the server cannot be reached, calls fail
// at once as unavailable naming why, and `unavailableReason` (for /readyz) says so until one gets through.
import Foundation
import PrismStore

public final class PostgresPool: Sendable {
    /// Host, port and database, for messages (the URL may hold a password).
    public let server: String
    private let url: String
    private let slots: [Slot]
    private let state = ReachState()

    public init(url: String, connections: Int = PostgresLimits.connections) {
        self.url = url
        self.server = Self.describe(url)
        slots = (0..<max(1, connections)).map { Slot(label: "prism.postgres-\($0)") }
    }

    /// Nil while the server answers and the pool is open; else why it cannot be used.
    public var unavailableReason: String? {
        guard let closed = state.closedReason else { return state.reason }
        return state.reason.map { "\(closed): \($0)" } ?? closed
    }

    /// Refuses calls (but `ungated` ones) as unavailable for `reason` until `open()`: while the
    /// schema is not known to be current, say.
    public func close(_ reason: String) { state.close(reason) }
    public func open() { state.close(nil) }

    /// Runs `body` on a connection (opened first if needed) on that connection's queue.
    public func run<T: Sendable>(ungated: Bool = false, _ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        if !ungated, state.closedReason != nil, let reason = unavailableReason { throw StoreError(reason, code: StoreError.unavailableCode) }
        let slot = slots.min { $0.pending < $1.pending }!
        return try await slot.run { held in
            do {
                // A connection kept from before may have been cut meanwhile (the server restarted):
                // found out by the call's first statement, which then did nothing, so the call
                // runs once more on a new connection.
                let reused = held.connection?.isOpen == true
                let connection = try self.connection(held)
                connection.statementsSent = 0
                let value: T
                do {
                    value = try body(connection)
                } catch let error as StoreError where error.isUnavailable && reused && connection.statementsSent <= 1 {
                    held.connection = nil
                    let fresh = try self.connection(held)
                    fresh.statementsSent = 0
                    value = try body(fresh)
                }
                self.state.succeeded()
                return value
            } catch let error as StoreError where error.isUnavailable {
                self.state.failed(error.description)
                throw error
            } catch let error as PostgresError {
                throw StoreError(error.description)
            }
        }
    }

    /// Runs `body` in one transaction, again (up to PostgresLimits.transactionAttempts) when
    /// PostgreSQL aborted it for a serialization failure or a deadlock.
    public func transaction<T: Sendable>(durable: Bool = true, ungated: Bool = false,
                                         _ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await run(ungated: ungated) { connection in
            var attempt = 1
            while true {
                do {
                    return try connection.transaction(durable: durable, body)
                } catch let error as PostgresError where PostgresConnection.retryableStates.contains(error.state)
                            && attempt < PostgresLimits.transactionAttempts {
                    attempt += 1
                }
            }
        }
    }

    /// Asks the server now and then (more often while it is down) so that readiness follows it
    /// without traffic; ends when the returned task is cancelled.
    public func monitor() -> Task<Void, Never> {
        Task {
            while !Task.isCancelled {
                _ = try? await self.run(ungated: true) { try $0.scalar("SELECT 1") }
                let wait = self.unavailableReason == nil ? PostgresLimits.probeSecondsWhenUp : PostgresLimits.probeSecondsWhenDown
                try? await Task.sleep(nanoseconds: UInt64(wait * 1_000_000_000))
            }
        }
    }

    /// The slot's connection, opened when it has none or lost it; during a backoff after a failed
    /// attempt, the attempt's failure again without trying.
    private func connection(_ held: Holder) throws -> PostgresConnection {
        if let connection = held.connection, connection.isOpen { return connection }
        held.connection = nil
        if let (reason, until) = state.backingOff(), Date() < until {
            throw StoreError(reason, code: StoreError.unavailableCode)
        }
        do {
            let connection = try PostgresConnection(url: url, server: server)
            held.connection = connection
            return connection
        } catch let error as StoreError {
            state.failed(error.description, backoff: true)
            throw error
        }
    }

    /// "host:port/database" of a URL, without user or password.
    static func describe(_ url: String) -> String {
        guard let parts = URLComponents(string: url), let host = parts.host else { return "the configured database" }
        return "\(host):\(parts.port ?? 5432)\(parts.path.isEmpty ? "" : parts.path)"
    }
}

/// One slot's connection; touched only on the slot's queue.
final class Holder: @unchecked Sendable {
    var connection: PostgresConnection?
}

/// A connection's queue and how many calls wait on it. Thread-safe: `lock` guards `waiting`;
/// `holder` is used only on `queue`.
private final class Slot: @unchecked Sendable {
    let queue: DispatchQueue
    private let holder = Holder()
    private let lock = NSLock()
    // Guarded by `lock`.
    private var waiting = 0

    init(label: String) { queue = DispatchQueue(label: label) }

    var pending: Int { lock.withLock { waiting } }

    func run<T: Sendable>(_ body: @escaping @Sendable (Holder) throws -> T) async throws -> T {
        lock.withLock { waiting += 1 }
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                let result = Result { try body(self.holder) }
                self.lock.withLock { self.waiting -= 1 }
                continuation.resume(with: result)
            }
        }
    }
}

/// Whether the server was reachable at the last try, and the reconnection backoff.
/// Thread-safe: `lock` guards every field.
private final class ReachState: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`.
    private var lastFailure: String?
    private var backoff = 0.0
    private var retryAt = Date.distantPast
    private var closed: String?

    var reason: String? { lock.withLock { lastFailure } }
    var closedReason: String? { lock.withLock { closed } }

    func close(_ reason: String?) { lock.withLock { closed = reason } }

    func succeeded() {
        lock.withLock {
            lastFailure = nil
            backoff = 0
            retryAt = .distantPast
        }
    }

    /// Records a failure; `backoff`: a connection attempt failed, so the next waits longer.
    func failed(_ reason: String, backoff grow: Bool = false) {
        lock.withLock {
            lastFailure = reason
            guard grow else { return }
            backoff = backoff == 0 ? PostgresLimits.firstBackoffSeconds : min(backoff * 2, PostgresLimits.longestBackoffSeconds)
            retryAt = Date().addingTimeInterval(backoff)
        }
    }

    /// The last failure and when a new attempt may be made, while backing off.
    func backingOff() -> (String, Date)? {
        lock.withLock { lastFailure.map { ($0, retryAt) } }
    }
}
