// A throwaway Redis for the tests, started and stopped with tools/services.sh on a free loopback
// port. Missing redis-server skips the test, except under CI (CI=true), where it fails.
import Foundation
import XCTest

final class TestRedis {
    let folder: String
    let port: Int
    var url: String { "redis://127.0.0.1:\(port)" }

    private static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("tools/services.sh").path

    /// A running Redis, or XCTSkip when redis-server is not installed (and this is not CI).
    static func start() throws -> TestRedis {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/redis-server") else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("redis-server is not installed (tools/setup.sh installs it)") }
            throw XCTSkip("redis-server is not installed")
        }
        let redis = TestRedis(port: try freePort())
        try redis.run("start")
        return redis
    }

    private init(port: Int) {
        self.port = port
        folder = NSTemporaryDirectory() + "prism-redis-\(UUID().uuidString)"
    }

    func stop() { try? run("stop") }

    /// Starts it again on the same port (after `stop`).
    func restart() throws { try run("start") }

    func remove() {
        stop()
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// Runs tools/services.sh with posix_spawn and waitpid: Foundation's Process.waitUntilExit
    /// hangs here once the script has left a daemon (redis-server) behind.
    private func run(_ action: String) throws {
        let arguments = ["/bin/bash", Self.script, "redis", action, folder, String(port)]
        var argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        // A child inherits the spawning thread's signal mask and ignored signals, and test code may
        // run on pool threads that block signals: the redis-server left behind must take SIGTERM
        // from `stop`, so the child starts with none blocked and every handler at its default.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        var status: Int32 = 0
        let spawned = posix_spawn(&pid, "/bin/bash", &actions, &attributes, &argv, environ) == 0
        var waited: pid_t = -1
        repeat { waited = spawned ? waitpid(pid, &status, 0) : -1 } while spawned && waited == -1 && errno == EINTR
        guard spawned, waited == pid, status == 0 else {
            throw NSError(domain: "TestRedis", code: Int(status),
                          userInfo: [NSLocalizedDescriptionKey: "tools/services.sh redis \(action) \(folder) \(port) failed"])
        }
    }

    /// A port the kernel just gave out and took back: free unless another process takes it first.
    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw XCTSkip("no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Polls `condition` until it holds or `seconds` pass; returns whether it held.
func eventually(within seconds: Double = 10, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await condition() { return true }
        try? await Task.sleep(nanoseconds: 20_000_000)
    }
    return try await condition()
}
