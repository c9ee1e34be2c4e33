// A few blocking hiredis connections to one Redis server, shared by the Redis cache and quota
// counters. Each connection lives on its own serial queue (as EmbeddedStore's SQLite connections
// do): callers await, no event loop ever blocks, and a dead server is retried with backoff.
//
// Why blocking connections and not hiredis's async API: the async API needs an event-library
// adapter (libevent, libev, libuv, ae) that watches the socket, and SwiftNIO has no public way to
// watch a foreign file descriptor, so it would need a second event loop of its own anyway. A
// command to a nearby Redis takes tens of microseconds: a handful of connections, each used by one
// queue at a time, serve thousands of commands a second, with timeouts so none waits forever.
import CHiredis
import Foundation

/// Where Redis is: `redis://[:password@]host[:port][/db]`.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var password: String?
    public var database: Int

    /// Parses `text`; throws StoreError naming what is wrong.
    public init(_ text: String) throws {
        guard let url = URLComponents(string: text), url.scheme == "redis", let host = url.host, !host.isEmpty else {
            throw StoreError("Redis URL '\(Self.redacted(text))' must look like redis://[:password@]host[:port][/db]")
        }
        self.host = host
        port = url.port ?? 6379
        password = url.password ?? (url.user.flatMap { $0.isEmpty ? nil : $0 })
        let path = url.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        guard path.isEmpty || Int(path) != nil else {
            throw StoreError("Redis URL '\(Self.redacted(text))': the path must be a database number, not '\(path)'")
        }
        database = Int(path) ?? 0
    }

    /// host:port/db, without the password: safe to log and to show in statuses.
    public var description: String { "redis://\(host):\(port)/\(database)" }

    private static func redacted(_ text: String) -> String {
        guard let at = text.lastIndex(of: "@"), let scheme = text.range(of: "://") else { return text }
        return String(text[..<scheme.upperBound]) + "…" + String(text[at...])
    }
}

/// A reply from Redis, copied out of hiredis's reply object.
public enum RedisReply: Sendable, Equatable {
    case string(Data)
    case integer(Int64)
    case array([RedisReply])
    case null
    case status(String)
    case error(String)
}

/// Redis could not be reached, or answered with an error.
public struct RedisError: Error, CustomStringConvertible, Sendable {
    /// True when the server is unreachable (connect failed, timed out, connection lost): the
    /// caller reports UNAVAILABLE; false for an error reply to a command that did run.
    public let unreachable: Bool
    public let description: String
}

/// The connections to one Redis server. Sendable by hand: `lock` guards the mutable fields (counter,
/// outage, monitor), and each connection is used only on its lane's serial queue.
public final class RedisPool: @unchecked Sendable {
    public let url: RedisURL
    private let lanes: [RedisLane]
    private let lock = NSLock()
    // Guarded by `lock`: the round-robin counter, and the outage: why, and when to try again.
    private var counter = 0
    private var outage: (reason: String, retryAt: Date, backoff: TimeInterval)?
    private var monitor: Task<Void, Never>?

    /// Connects lazily: a server that is down at start makes the first commands fail, not `init`.
    public init(url: RedisURL, connections: Int = StoreLimits.redisConnections) {
        self.url = url
        lanes = (0..<max(1, connections)).map { RedisLane(url: url, label: "prism.redis-\($0)") }
    }

    /// Nil while Redis answers; else why not (for /readyz).
    public var unavailableReason: String? {
        lock.withLock { outage.map { "Redis at \(url) is unreachable: \($0.reason)" } }
    }

    /// Runs one command (arguments binary-safe). During an outage it fails at once with the last
    /// reason until the backoff has passed; then commands try to reconnect again.
    public func command(_ arguments: [Data]) async throws -> RedisReply {
        let lane: RedisLane = try lock.withLock {
            if let outage, outage.retryAt > Date() {
                throw RedisError(unreachable: true, description: "Redis at \(url) is unreachable: \(outage.reason)")
            }
            counter &+= 1
            return lanes[counter % lanes.count]
        }
        do {
            let reply = try await lane.run(arguments)
            lock.withLock { outage = nil }
            return reply
        } catch let error as RedisError where error.unreachable {
            lock.withLock {
                let backoff = min(StoreLimits.redisMaxBackoffSeconds, (outage?.backoff ?? StoreLimits.redisMinBackoffSeconds / 2) * 2)
                outage = (error.description, Date().addingTimeInterval(backoff), backoff)
            }
            throw RedisError(unreachable: true, description: "Redis at \(url) is unreachable: \(error.description)")
        }
    }

    public func command(_ arguments: String...) async throws -> RedisReply {
        try await command(arguments.map { Data($0.utf8) })
    }

    /// Pings every `StoreLimits.redisProbeSeconds`, so the outage state (and /readyz) follows the
    /// server without waiting for traffic. Idempotent.
    public func startMonitor() {
        lock.withLock {
            guard monitor == nil else { return }
            monitor = Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(nanoseconds: UInt64(StoreLimits.redisProbeSeconds * 1e9))
                    guard let self else { return }
                    _ = try? await self.command("PING")
                }
            }
        }
    }

    /// Stops the monitor; connections close as their lanes are released.
    public func close() {
        lock.withLock { monitor?.cancel() }
    }
}

/// One connection and the serial queue that alone may use it.
private final class RedisLane: @unchecked Sendable {
    private let url: RedisURL
    private let queue: DispatchQueue
    // Used only on `queue`.
    private var context: UnsafeMutablePointer<redisContext>?

    init(url: RedisURL, label: String) {
        self.url = url
        queue = DispatchQueue(label: label)
    }

    deinit {
        if let context { redisFree(context) }
    }

    func run(_ arguments: [Data]) async throws -> RedisReply {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try self.execute(arguments) })
            }
        }
    }

    /// On `queue`: the command on this lane's connection, connecting first if needed. A connection
    /// that failed is dropped (hiredis cannot use it again); the next command makes a new one.
    private func execute(_ arguments: [Data]) throws -> RedisReply {
        dispatchPrecondition(condition: .onQueue(queue))
        let context = try connected()
        do {
            return try Self.send(arguments, on: context)
        } catch let error as RedisError where error.unreachable {
            redisFree(context)
            self.context = nil
            throw error
        }
    }

    private func connected() throws -> UnsafeMutablePointer<redisContext> {
        if let context { return context }
        let timeout = Self.timeval(StoreLimits.redisConnectTimeoutSeconds)
        guard let context = redisConnectWithTimeout(url.host, Int32(url.port), timeout) else {
            throw RedisError(unreachable: true, description: "cannot allocate a connection")
        }
        if context.pointee.err != 0 {
            let reason = Self.errorText(context)
            redisFree(context)
            throw RedisError(unreachable: true, description: reason)
        }
        _ = redisSetTimeout(context, Self.timeval(StoreLimits.redisCommandTimeoutSeconds))
        _ = redisEnableKeepAlive(context)
        do {
            if let password = url.password { try Self.check(Self.send([Data("AUTH".utf8), Data(password.utf8)], on: context), "AUTH") }
            if url.database != 0 { try Self.check(Self.send([Data("SELECT".utf8), Data(String(url.database).utf8)], on: context), "SELECT") }
        } catch {
            redisFree(context)
            throw error
        }
        self.context = context
        return context
    }

    /// A refused AUTH or SELECT makes every later command fail: it counts as unreachable.
    private static func check(_ reply: RedisReply, _ command: String) throws {
        if case .error(let message) = reply { throw RedisError(unreachable: true, description: "\(command) refused: \(message)") }
    }

    private static func send(_ arguments: [Data], on context: UnsafeMutablePointer<redisContext>) throws -> RedisReply {
        // hiredis copies the arguments into its output buffer before returning.
        let copies = arguments.map { data -> UnsafeMutablePointer<CChar> in
            let bytes = UnsafeMutablePointer<CChar>.allocate(capacity: max(1, data.count))
            data.withUnsafeBytes { raw in
                if let base = raw.baseAddress { memcpy(bytes, base, data.count) }
            }
            return bytes
        }
        defer { copies.forEach { $0.deallocate() } }
        var pointers: [UnsafePointer<CChar>?] = copies.map { UnsafePointer($0) }
        var lengths = arguments.map(\.count)
        guard let raw = redisCommandArgv(context, Int32(arguments.count), &pointers, &lengths) else {
            throw RedisError(unreachable: true, description: errorText(context))
        }
        let reply = raw.assumingMemoryBound(to: redisReply.self)
        defer { freeReplyObject(raw) }
        return copy(reply)
    }

    private static func copy(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let r = reply.pointee
        func text() -> Data { r.str == nil ? Data() : Data(bytes: r.str, count: r.len) }
        switch r.type {
        case REDIS_REPLY_STRING: return .string(text())
        case REDIS_REPLY_INTEGER: return .integer(r.integer)
        case REDIS_REPLY_NIL: return .null
        case REDIS_REPLY_STATUS: return .status(String(decoding: text(), as: UTF8.self))
        case REDIS_REPLY_ERROR: return .error(String(decoding: text(), as: UTF8.self))
        case REDIS_REPLY_ARRAY:
            return .array((0..<r.elements).compactMap { r.element[$0].map(copy) })
        default: return .null
        }
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            let text = String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            return text.isEmpty ? "connection error \(context.pointee.err)" : text
        }
    }

    private static func timeval(_ seconds: Double) -> Glibc.timeval {
        Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
    }
}
