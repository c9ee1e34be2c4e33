// A throwaway PostgreSQL server for the store tests (tools/services.sh on a free port, one per test
// process, destroyed at exit) and a fresh database per test. Skipped where PostgreSQL is not
// installed, except in CI (CI=true), where a missing server is a failure.
import Foundation
import PrismStore
import PrismStorePostgres
import XCTest

enum TestPostgres {
    /// The server's folder, for the exit handler (which cannot capture).
    nonisolated(unsafe) static var folder = ""

    /// The URL of the server's maintenance database, or why there is none.
    static let server: Result<String, Error> = start()

    /// A new empty database on the test server, its URL; skips the test without PostgreSQL.
    static func freshDatabase() throws -> String {
        let base: String
        switch server {
        case .success(let url): base = url
        case .failure(let error as XCTSkip): throw error
        case .failure(let error): throw error
        }
        let name = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20)
        let admin = try PostgresConnection(url: base, server: "the test server")
        try admin.exec("CREATE DATABASE \(name)")
        guard base.hasSuffix("/prism") else { throw StoreError("unexpected test server URL \(base)") }
        return base.dropLast("prism".count) + name
    }

    /// A new empty database with the schema, its URL.
    static func migratedDatabase() async throws -> String {
        let url = try freshDatabase()
        try await PostgresSchema.migrate(PostgresPool(url: url, connections: 1))
        return url
    }

    static var repositoryRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    private static func start() -> Result<String, Error> {
        let installed = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql"))?.isEmpty == false
        guard installed else {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                return .failure(StoreError("PostgreSQL is not installed, and CI must run these tests (tools/setup.sh installs it)"))
            }
            return .failure(XCTSkip("PostgreSQL is not installed (apt-get install postgresql)"))
        }
        folder = NSTemporaryDirectory() + "prism-pg-tests-\(getpid())"
        do {
            let output = try services(["postgres", "start", folder, String(try freePort())])
            atexit {
                _ = try? TestPostgres.services(["postgres", "destroy", TestPostgres.folder])
                try? FileManager.default.removeItem(atPath: TestPostgres.folder)
            }
            guard let url = output.split(separator: "\n").last.map(String.init), url.hasPrefix("postgres://") else {
                return .failure(StoreError("tools/services.sh printed no URL: \(output)"))
            }
            return .success(url)
        } catch {
            return .failure(error)
        }
    }

    /// Runs tools/services.sh with `arguments` (paths and numbers: no quoting needed beyond the
    /// single quotes); its output, or an error with it. popen, not Foundation's Process, whose
    /// waitUntilExit can miss the child's exit when called from a test's async context.
    @discardableResult
    static func services(_ arguments: [String]) throws -> String {
        let command = ([repositoryRoot + "/tools/services.sh"] + arguments).map { "'\($0)'" }.joined(separator: " ") + " 2>&1"
        guard let pipe = popen(command, "r") else { throw StoreError("cannot run \(command)") }
        var output = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, pipe)
            if n <= 0 { break }
            output.append(contentsOf: buffer[0..<n])
        }
        let status = pclose(pipe)
        let text = String(decoding: output, as: UTF8.self)
        guard status == 0 else { throw StoreError("\(command) failed (\(status)): \(text)") }
        return text
    }

    /// A TCP port free on loopback now (the kernel's pick for port 0).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw StoreError("no free port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
