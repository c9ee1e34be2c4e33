// Every bound and timing of the stores layer in one place, each with the reason for its number.
import Foundation

public enum StoreLimits {
    /// How long a statement waits for another connection's lock (a second process on the same
    /// data folder, or a checkpoint) before failing: long enough to ride out a checkpoint of a
    /// large WAL, short enough that a stuck peer shows up as an error instead of a hang.
    public static let busyTimeoutMilliseconds: Int32 = 5_000
    /// Read connections beside the one writer. WAL lets them read while the writer commits; two
    /// cover a 2-core machine, and a read is a primary-key lookup that takes microseconds.
    public static let readConnections = 2
    /// The database file's name inside the data folder.
    public static let databaseFileName = "prism.sqlite3"
    /// Bytes counted per cache entry beyond its value (key, row and index overhead), so that the
    /// disk bound holds for many small answers too.
    public static let cacheEntryOverheadBytes = 128
    /// Longest time between sweeps of expired cache entries (shorter when the TTL is): often
    /// enough that the disk holds little dead weight, rare enough to cost nothing.
    public static let cacheSweepSeconds: Double = 60
    /// The file a process locks to own the data folder's batches (SQLiteBatchStore): leases held
    /// by any other owner are then known dead at startup, so a restart resumes at once.
    public static let batchLockFileName = "batches.lock"

    /// Connections to Redis per process: a command takes tens of microseconds, so four serve
    /// thousands a second, and a slow one (a big cache entry) holds up only a quarter of the rest.
    public static let redisConnections = 4
    /// How long connecting to Redis may take: it is meant to be nearby, and a request waits on it.
    public static let redisConnectTimeoutSeconds = 0.5
    /// How long one Redis command may take before the server counts as unreachable (a stopped
    /// or overloaded server): short, because a quota check or cache lookup sits in every call.
    public static let redisCommandTimeoutSeconds = 1.0
    /// Backoff between reconnection attempts after Redis failed, doubling from the first to the
    /// last: during it commands fail at once with the reason instead of each waiting for a timeout.
    public static let redisMinBackoffSeconds = 0.1
    public static let redisMaxBackoffSeconds = 5.0
    /// How often the pool pings Redis, so /readyz follows an outage and its end without traffic.
    public static let redisProbeSeconds = 1.0
    /// Default bound on one answer stored in the Redis cache (cache.max_entry_bytes): Redis holds
    /// values in memory, and a larger answer is cheaper to regenerate than to hold for everyone.
    public static let redisCacheMaxEntryBytes = 1 << 20
}
