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
}
