// One libpq connection: connect (bounded by a timeout and TCP keepalives), run parameterised
// statements with binary parameters and results, transactions. Blocking and not thread-safe by
// itself: PostgresPool confines each connection to one serial queue, as EmbeddedStore does SQLite's.
import CPostgres
import Foundation
import PrismStore

/// A value bound to a statement's parameter or read from a column.
public enum PostgresValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case real(Double)
    case text(String)
    case bytes(Data)

    public var integer: Int64? {
        switch self {
        case .integer(let value): return value
        case .real(let value): return Int64(value)
        default: return nil
        }
    }

    public var real: Double? {
        switch self {
        case .real(let value): return value
        case .integer(let value): return Double(value)
        default: return nil
        }
    }

    public var text: String? { if case .text(let value) = self { return value } else { return nil } }
    public var bytes: Data? { if case .bytes(let value) = self { return value } else { return nil } }
    public var bool: Bool? { if case .bool(let value) = self { return value } else { return nil } }
}

/// An open connection. Use it from one thread at a time (its queue in PostgresPool).
public final class PostgresConnection {
    private let handle: OpaquePointer
    /// The server as errors name it (host, port and database; never a password).
    let server: String

    /// SQLSTATEs worth running a transaction again for: serialization failure, deadlock.
    static let retryableStates: Set<String> = ["40001", "40P01"]

    /// Connects to `url` (a libpq URI or key=value string). Throws an unavailable StoreError
    /// naming the server and libpq's reason when it cannot.
    public init(url: String, server: String) throws {
        self.server = server
        // Our defaults first, the URL last: with expand_dbname, later parameters override earlier
        // ones, so a parameter the URL sets (connect_timeout=10, say) wins over ours.
        let keys = ["connect_timeout", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                    "application_name", "dbname"]
        let values = [String(PostgresLimits.connectTimeoutSeconds), "5", "2", "3", String(PostgresLimits.tcpUserTimeoutMilliseconds),
                      "prism-server", url]
        let keyPointers = keys.map { strdup($0) } + [nil]
        let valuePointers = values.map { strdup($0) } + [nil]
        defer { (keyPointers + valuePointers).forEach { free($0) } }
        // expand_dbname 1: `dbname` holds the whole URL.
        let connection = keyPointers.map { UnsafePointer($0) }.withUnsafeBufferPointer { k in
            valuePointers.map { UnsafePointer($0) }.withUnsafeBufferPointer { v in PQconnectdbParams(k.baseAddress, v.baseAddress, 1) }
        }
        guard let connection else { throw StoreError("PostgreSQL at \(server): out of memory", code: StoreError.unavailableCode) }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = Self.trimmed(PQerrorMessage(connection))
            PQfinish(connection)
            throw StoreError("PostgreSQL at \(server) is unreachable: \(message)", code: StoreError.unavailableCode)
        }
        // Notices (a query of stop words only, say) would go to stderr; the store has no use for them.
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        handle = connection
    }

    deinit { PQfinish(handle) }

    /// False once the connection is lost (the server stopped or the network failed).
    public var isOpen: Bool { PQstatus(handle) == CONNECTION_OK }

    /// Statements sent since the pool last reset it: a lost connection found by the first one
    /// of a call changed nothing, so the pool may run the call again on a new connection.
    var statementsSent = 0

    /// Runs one or more statements without parameters or results (schema, BEGIN/COMMIT).
    public func exec(_ sql: String) throws {
        statementsSent += 1
        let result = PQexec(handle, sql)
        defer { PQclear(result) }
        try check(result, sql)
    }

    /// Runs one statement; returns its rows (binary results decoded by column type).
    @discardableResult
    public func query(_ sql: String, _ parameters: [PostgresValue] = []) throws -> [[PostgresValue]] {
        let result = try execute(sql, parameters)
        defer { PQclear(result) }
        let rows = Int(PQntuples(result)), columns = Int(PQnfields(result))
        return try (0..<rows).map { row in
            try (0..<columns).map { column in try Self.value(result, Int32(row), Int32(column)) }
        }
    }

    /// Runs one statement; returns how many rows it changed.
    @discardableResult
    public func run(_ sql: String, _ parameters: [PostgresValue] = []) throws -> Int {
        let result = try execute(sql, parameters)
        defer { PQclear(result) }
        return Int(String(cString: PQcmdTuples(result))) ?? 0
    }

    /// The first column of the first row, if any.
    public func scalar(_ sql: String, _ parameters: [PostgresValue] = []) throws -> PostgresValue? {
        try query(sql, parameters).first?.first
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    /// `durable`: the commit is flushed to the server's disk before this returns; otherwise it
    /// may be lost with the server's power (synchronous_commit off), never half applied.
    public func transaction<T>(durable: Bool = true, _ body: (PostgresConnection) throws -> T) throws -> T {
        try exec(durable ? "BEGIN" : "BEGIN; SET LOCAL synchronous_commit = off")
        do {
            let value = try body(self)
            try exec("COMMIT")
            return value
        } catch {
            if isOpen { try? exec("ROLLBACK") }
            throw error
        }
    }

    /// Waits up to `seconds` for notifications of the channels this session LISTENs to, and
    /// returns their payloads (empty when none came). Throws unavailable when the connection is lost.
    public func notifications(waitingUpTo seconds: Double) throws -> [String] {
        var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
        _ = poll(&descriptor, 1, Int32(seconds * 1000))
        guard PQconsumeInput(handle) == 1, isOpen else {
            throw StoreError("PostgreSQL at \(server) is unreachable: \(Self.trimmed(PQerrorMessage(handle)))", code: StoreError.unavailableCode)
        }
        var payloads: [String] = []
        while let notification = PQnotifies(handle) {
            payloads.append(notification.pointee.extra.map { String(cString: $0) } ?? "")
            PQfreemem(notification)
        }
        return payloads
    }

    // MARK: - libpq

    private func execute(_ sql: String, _ parameters: [PostgresValue]) throws -> OpaquePointer? {
        statementsSent += 1
        var types: [Oid] = [], lengths: [Int32] = [], buffers: [Data?] = []
        for parameter in parameters {
            let (type, data) = Self.encode(parameter)
            types.append(type)
            buffers.append(data)
            lengths.append(Int32(data?.count ?? 0))
        }
        let formats = [Int32](repeating: 1, count: parameters.count)
        // Copies that live until the call returns (libpq reads them during the call only).
        let pointers: [UnsafeMutablePointer<CChar>?] = buffers.map { data in
            guard let data else { return nil }
            let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: max(1, data.count))
            data.withUnsafeBytes { raw in if let base = raw.baseAddress { pointer.update(from: base.assumingMemoryBound(to: CChar.self), count: data.count) } }
            return pointer
        }
        defer { pointers.forEach { $0?.deallocate() } }
        let result = pointers.map { UnsafePointer($0) }.withUnsafeBufferPointer { values in
            PQexecParams(handle, sql, Int32(parameters.count), types, values.baseAddress, lengths, formats, 1)
        }
        do {
            try check(result, sql)
        } catch {
            PQclear(result)
            throw error
        }
        return result
    }

    private func check(_ result: OpaquePointer?, _ sql: String) throws {
        let status = result.map(PQresultStatus) ?? PGRES_FATAL_ERROR
        guard status != PGRES_COMMAND_OK, status != PGRES_TUPLES_OK else { return }
        let message = Self.trimmed(result.map(PQresultErrorMessage) ?? PQerrorMessage(handle))
        let state = result.flatMap { PQresultErrorField($0, Int32(UInt8(ascii: "C"))) }.map { String(cString: $0) } ?? ""
        // Lost connection, or the server shutting down (57P01..57P03): unavailable, not a bug.
        if !isOpen || state.hasPrefix("57P") || state.hasPrefix("08") {
            throw StoreError("PostgreSQL at \(server) is unreachable: \(message.isEmpty ? "the connection was lost" : message)",
                             code: StoreError.unavailableCode)
        }
        throw PostgresError(message: "\(message) (in: \(sql.split(whereSeparator: \.isNewline).first.map(String.init)?.prefix(80) ?? ""))", state: state)
    }

    /// libpq's message on one line (it wraps hints onto indented lines), for a gRPC status or a log.
    private static func trimmed(_ message: UnsafePointer<CChar>?) -> String {
        guard let message else { return "" }
        return String(cString: message).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: " ")
    }

    // Type OIDs (pg_type) of the values we send and read.
    private static let boolOID: Oid = 16, byteaOID: Oid = 17, nameOID: Oid = 19, int8OID: Oid = 20, int2OID: Oid = 21,
                       int4OID: Oid = 23, textOID: Oid = 25, float4OID: Oid = 700, float8OID: Oid = 701, varcharOID: Oid = 1043

    private static func encode(_ value: PostgresValue) -> (Oid, Data?) {
        switch value {
        case .null: return (0, nil)
        case .bool(let value): return (boolOID, Data([value ? 1 : 0]))
        case .integer(let value): return (int8OID, withUnsafeBytes(of: value.bigEndian) { Data($0) })
        case .real(let value): return (float8OID, withUnsafeBytes(of: value.bitPattern.bigEndian) { Data($0) })
        case .text(let value): return (textOID, Data(value.utf8))
        case .bytes(let value): return (byteaOID, value)
        }
    }

    private static func value(_ result: OpaquePointer?, _ row: Int32, _ column: Int32) throws -> PostgresValue {
        guard PQgetisnull(result, row, column) == 0, let raw = PQgetvalue(result, row, column) else { return .null }
        let count = Int(PQgetlength(result, row, column))
        let bytes = UnsafeRawBufferPointer(start: raw, count: count)
        func bigEndian<T: FixedWidthInteger>(_: T.Type) -> T {
            bytes.reduce(T(0)) { ($0 << 8) | T(truncatingIfNeeded: $1) }
        }
        switch PQftype(result, column) {
        case boolOID: return .bool(count == 1 && bytes[0] != 0)
        case byteaOID: return .bytes(Data(bytes))
        case int8OID: return .integer(bigEndian(Int64.self))
        case int4OID: return .integer(Int64(bigEndian(Int32.self)))
        case int2OID: return .integer(Int64(bigEndian(Int16.self)))
        case float8OID: return .real(Double(bitPattern: bigEndian(UInt64.self)))
        case float4OID: return .real(Double(Float(bitPattern: bigEndian(UInt32.self))))
        case textOID, varcharOID, nameOID: return .text(String(decoding: bytes, as: UTF8.self))
        case 2278: return .null  // void: what a function without a result (pg_advisory_lock) returns
        case let type: throw StoreError("PostgreSQL returned a column of type \(type), which the store does not read (cast it in the query)")
        }
    }
}

/// A statement PostgreSQL refused, with its SQLSTATE.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public let state: String
    public var description: String { "\(message) [SQLSTATE \(state)]" }
}
