// One SQLite connection and its prepared statements: open, exec, bind, step, read columns,
// transactions. Not thread-safe by itself: EmbeddedStore confines each connection to one serial
// queue, so SQLite's own mutexes are off (SQLITE_OPEN_NOMUTEX).
import CSQLite
import Foundation

/// A failure of the store, with SQLite's message when it came from SQLite.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public let description: String
    /// SQLite's primary result code, or 0 for the store's own refusals.
    public let code: Int32

    public init(_ description: String, code: Int32 = 0) {
        self.description = description
        self.code = code
    }

    /// `code` of a failure to reach a shared store's server (PostgreSQL down or unreachable):
    /// the request may succeed later, so services answer UNAVAILABLE, not INTERNAL.
    public static let unavailableCode: Int32 = -1

    public var isUnavailable: Bool { code == Self.unavailableCode }
}

/// A value bound to a statement's parameter or read from a column.
public enum SQLiteValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob(Data)
}

/// An open database connection. Use it from one thread at a time (its queue in EmbeddedStore).
public final class SQLiteConnection {
    let handle: OpaquePointer
    public let path: String
    /// The statements of `run`, `query` and `scalar` by their SQL, prepared once and kept for
    /// the connection's life: a store's few statements are parsed once, not at every use
    /// (parsing was most of what recording an answer's usage cost). At most this many.
    private var kept: [String: OpaquePointer] = [:]
    static let maxKeptStatements = 64

    /// Opens (creating if asked) the database at `path`. `busyTimeoutMilliseconds` is how long a
    /// statement waits for another connection's lock before failing with SQLITE_BUSY.
    public init(path: String, readOnly: Bool = false, busyTimeoutMilliseconds: Int32 = StoreLimits.busyTimeoutMilliseconds) throws {
        var db: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(db)
            throw StoreError("cannot open the database \(path): \(message)", code: rc)
        }
        handle = db
        self.path = path
        sqlite3_busy_timeout(db, busyTimeoutMilliseconds)
        sqlite3_extended_result_codes(db, 1)
    }

    deinit {
        kept.values.forEach { sqlite3_finalize($0) }
        sqlite3_close_v2(handle)
    }

    /// Runs one or more statements without results (schema, pragmas, BEGIN/COMMIT).
    public func exec(_ sql: String) throws {
        var error: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &error)
        if rc != SQLITE_OK {
            let message = error.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(error)
            throw StoreError("\(message) (in: \(sql.prefix(80)))", code: rc & 0xff)
        }
    }

    /// Prepares `sql` and binds `parameters` (?1, ?2, ... in order).
    public func prepare(_ sql: String, _ parameters: [SQLiteValue] = []) throws -> SQLiteStatement {
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw error(rc, sql) }
        let prepared = SQLiteStatement(statement, connection: self, sql: sql)
        try prepared.bind(parameters)
        return prepared
    }

    /// A kept statement for `sql` with `parameters` bound, for a caller that is done with it
    /// before returning (reset when the returned object goes); a fresh one past the limit.
    private func reusable(_ sql: String, _ parameters: [SQLiteValue]) throws -> SQLiteStatement {
        var statement = kept[sql]
        if statement == nil {
            guard kept.count < Self.maxKeptStatements else { return try prepare(sql, parameters) }
            let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
            guard rc == SQLITE_OK, statement != nil else { throw error(rc, sql) }
            kept[sql] = statement
        }
        let reused = SQLiteStatement(statement!, connection: self, sql: sql, kept: true)
        try reused.bind(parameters)
        return reused
    }

    /// Runs a statement that returns no rows; returns the rows it changed.
    @discardableResult
    public func run(_ sql: String, _ parameters: [SQLiteValue] = []) throws -> Int {
        let statement = try reusable(sql, parameters)
        while try statement.step() {}
        return Int(sqlite3_changes(handle))
    }

    /// Every row of a query, each as its columns' values.
    public func query(_ sql: String, _ parameters: [SQLiteValue] = []) throws -> [[SQLiteValue]] {
        let statement = try reusable(sql, parameters)
        var rows: [[SQLiteValue]] = []
        while try statement.step() { rows.append(statement.row) }
        return rows
    }

    /// The first column of the first row, or nil when there is no row.
    public func scalar(_ sql: String, _ parameters: [SQLiteValue] = []) throws -> SQLiteValue? {
        let statement = try reusable(sql, parameters)
        return try statement.step() ? statement.column(0) : nil
    }

    /// Rows changed by the last INSERT, UPDATE or DELETE that finished.
    public var changes: Int { Int(sqlite3_changes(handle)) }

    /// Runs `body` inside BEGIN IMMEDIATE ... COMMIT (the write lock taken at once, so a busy
    /// database fails fast at BEGIN rather than midway); rolls back if it throws.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try exec("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try exec("COMMIT")
            return result
        } catch {
            try? exec("ROLLBACK")
            throw error
        }
    }

    func error(_ rc: Int32, _ sql: String) -> StoreError {
        StoreError("\(String(cString: sqlite3_errmsg(handle))) (in: \(sql.prefix(80)))", code: rc & 0xff)
    }
}

/// A prepared statement; finalized when released, or reset when the connection keeps it.
public final class SQLiteStatement {
    private let statement: OpaquePointer
    private let connection: SQLiteConnection
    private let sql: String
    private let kept: Bool

    fileprivate init(_ statement: OpaquePointer, connection: SQLiteConnection, sql: String, kept: Bool = false) {
        self.statement = statement
        self.connection = connection
        self.sql = sql
        self.kept = kept
    }

    deinit {
        if kept { reset() } else { sqlite3_finalize(statement) }
    }

    /// SQLite copies bound text and blobs (SQLITE_TRANSIENT), so the Swift values may go away.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    /// Binds `values` to ?1, ?2, ...
    public func bind(_ values: [SQLiteValue]) throws {
        for (index, value) in values.enumerated() {
            let i = Int32(index + 1)
            let rc: Int32
            switch value {
            case .null: rc = sqlite3_bind_null(statement, i)
            case .integer(let v): rc = sqlite3_bind_int64(statement, i, v)
            case .real(let v): rc = sqlite3_bind_double(statement, i, v)
            case .text(let v): rc = sqlite3_bind_text(statement, i, v, -1, Self.transient)
            case .blob(let v):
                rc = v.withUnsafeBytes { sqlite3_bind_blob64(statement, i, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1), sqlite3_uint64(v.count), Self.transient) }
            }
            guard rc == SQLITE_OK else { throw connection.error(rc, sql) }
        }
    }

    /// Readies the statement to run again with new bindings (a loop of inserts prepares once).
    public func reset() {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
    }

    /// Advances to the next row: true while there is one, false once done.
    public func step() throws -> Bool {
        let rc = sqlite3_step(statement)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw connection.error(rc, sql)
        }
    }

    /// The current row's columns.
    public var row: [SQLiteValue] { (0..<sqlite3_column_count(statement)).map { column($0) } }

    /// One column of the current row.
    public func column(_ index: Int32) -> SQLiteValue {
        switch sqlite3_column_type(statement, index) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(statement, index))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(statement, index))
        case SQLITE_TEXT: return .text(String(cString: sqlite3_column_text(statement, index)))
        case SQLITE_BLOB:
            let count = Int(sqlite3_column_bytes(statement, index))
            guard count > 0, let bytes = sqlite3_column_blob(statement, index) else { return .blob(Data()) }
            return .blob(Data(bytes: bytes, count: count))
        default: return .null
        }
    }
}

extension SQLiteValue {
    public var integer: Int64? { if case .integer(let v) = self { return v } else { return nil } }
    public var text: String? { if case .text(let v) = self { return v } else { return nil } }
    public var blob: Data? { if case .blob(let v) = self { return v } else { return nil } }
}
