// Every bound and timing of the PostgreSQL store in one place, each with the reason for its number.
import Foundation

public enum PostgresLimits {
    /// Connections per process: each is a blocking libpq session on its own queue. Four cover a
    /// 2-core machine's store work (a batch pass, a search and two writes at once) and leave the
    /// server's connection slots to other replicas.
    public static let connections = 4
    /// How long a connection attempt may take: long enough for a loaded server on a LAN, short
    /// enough that a request needing the store gets its UNAVAILABLE within a few seconds.
    public static let connectTimeoutSeconds = 3
    /// How long sent data may stay unacknowledged before the connection counts as lost (a server
    /// gone from the network without closing its sockets).
    public static let tcpUserTimeoutMilliseconds = 10_000
    /// Reconnection backoff after a failed attempt: doubling from the first to the longest. In
    /// between, requests fail at once with the last reason instead of each waiting for a timeout.
    public static let firstBackoffSeconds = 0.25
    public static let longestBackoffSeconds = 5.0
    /// How often the readiness probe asks the server while it is reachable and while it is not.
    public static let probeSecondsWhenUp = 5.0
    public static let probeSecondsWhenDown = 1.0
    /// Runs of a transaction that PostgreSQL aborted for a serialization failure or deadlock.
    public static let transactionAttempts = 3
    /// The advisory lock key (pg_advisory_xact_lock) under which migrations run: "prism" in ASCII.
    public static let migrationLockKey: Int64 = 0x70_72_69_73_6d
    /// How long a lease on a chunk being prepared or submitted lasts between heartbeats
    /// (renewLeases); a replica that dies holding one loses it after this long.
    public static let defaultChunkLeaseSeconds: TimeInterval = 60
}
