// The vendor plugin tests' shared setup: runs a vendor's fake of tools/fakes/ (openai_fake.py,
// anthropic_fake.py, gemini_fake.py) as a subprocess on an ephemeral port, reads the JSON-lines log
// of what it received, and starts a gateway whose vendor plugins are pointed at their fakes.
import Foundation
import PrismServer
import XCTest

struct FakeFailure: Error, CustomStringConvertible {
    let description: String
}

/// A vendor with a plugin and a fake: what differs between the vendor tests' setups.
struct Vendor {
    /// The fake in tools/fakes/.
    let script: String
    /// The plugin product SwiftPM builds.
    let plugin: String
    /// The variables the plugin reads its key and base URL from.
    let keyVariable: String
    let baseURLVariable: String
    /// What follows the fake's address in the base URL the plugin is given.
    let baseURLSuffix: String

    static let openAI = Vendor(script: "openai_fake.py", plugin: "libprism-plugin-openai.so",
                               keyVariable: "OPENAI_API_KEY", baseURLVariable: "OPENAI_BASE_URL", baseURLSuffix: "/v1")
    static let anthropic = Vendor(script: "anthropic_fake.py", plugin: "libprism-plugin-anthropic.so",
                                  keyVariable: "ANTHROPIC_API_KEY", baseURLVariable: "ANTHROPIC_BASE_URL", baseURLSuffix: "")
    static let gemini = Vendor(script: "gemini_fake.py", plugin: "libprism-plugin-gemini.so",
                               keyVariable: "GEMINI_API_KEY", baseURLVariable: "GEMINI_BASE_URL", baseURLSuffix: "/v1beta")
}

/// One running vendor fake.
final class VendorFake {
    /// How long the fake may take to start listening before the test fails.
    static let startSeconds = 10.0

    let vendor: Vendor
    let port: Int
    let logPath: String
    private let process: Process

    /// The base URL the vendor's plugin is given to reach this fake.
    var baseURL: String { "http://127.0.0.1:\(port)\(vendor.baseURLSuffix)" }

    /// Starts the fake; with a `key`, requests without that key get the vendor's auth error.
    init(_ vendor: Vendor, key: String? = nil) throws {
        self.vendor = vendor
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let script = root.appendingPathComponent("tools/fakes/\(vendor.script)").path
        let name = (vendor.script as NSString).deletingPathExtension
        logPath = NSTemporaryDirectory() + "\(name)-\(UUID().uuidString).jsonl"
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, "--port", "0", "--log", logPath] + (key.map { ["--key", $0] } ?? [])
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        // Read "PORT <n>\n" with a deadline, so a fake that never starts fails the test.
        let fd = out.fileHandleForReading.fileDescriptor
        var line = Data()
        let end = Date().addingTimeInterval(Self.startSeconds)
        while !line.contains(0x0A) && Date() < end {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 100) > 0 else { continue }
            var byte: UInt8 = 0
            guard read(fd, &byte, 1) == 1 else { break }
            line.append(byte)
        }
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("PORT "), let port = Int(text.dropFirst(5)) else {
            kill(process.processIdentifier, SIGKILL)
            throw FakeFailure(description: "the fake \(vendor.script) did not start (said '\(text)')")
        }
        self.port = port
    }

    func stop() {
        // SIGKILL: the test process may hand its children a blocked or ignored SIGTERM.
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: logPath)
    }

    /// Every log entry so far: requests (with "path") and stream events (with "event").
    func log() -> [[String: Any]] {
        guard let text = try? String(contentsOfFile: logPath, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
    }

    var requests: [[String: Any]] { log().filter { $0["path"] != nil } }

    /// Polls the log until an entry satisfies `condition`.
    func waitForEntry(seconds: Double = 5, _ condition: ([String: Any]) -> Bool) async throws -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if log().contains(where: condition) { return true }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        return false
    }
}

/// The fakes, environment and gateway of one vendor test: start the fakes, then the gateway, and
/// `stop()` in tearDown, which also undoes whatever a failed start left behind.
final class VendorTestBed {
    private(set) var fakes: [VendorFake] = []
    private(set) var gateway: TestGateway?
    private var vendors: [Vendor] = []

    /// Starts `vendor`'s fake (requiring `fakeKey` when given) and sets the plugin's variables:
    /// `key` as its key and the fake's base URL unless `useBaseURL` is false (nil or false = unset).
    @discardableResult
    func startFake(_ vendor: Vendor, fakeKey: String?, key: String?, useBaseURL: Bool = true) throws -> VendorFake {
        vendors.append(vendor)
        let fake = try VendorFake(vendor, key: fakeKey)
        fakes.append(fake)
        if let key { setenv(vendor.keyVariable, key, 1) } else { unsetenv(vendor.keyVariable) }
        if useBaseURL { setenv(vendor.baseURLVariable, fake.baseURL, 1) } else { unsetenv(vendor.baseURLVariable) }
        return fake
    }

    /// Starts a gateway with the plugin of every vendor started so far, in a folder of its own.
    func startGateway(configure: (inout ServerSettings) -> Void = { _ in }) async throws -> TestGateway {
        let folder = try Plugins.folder()
        for vendor in vendors { try Plugins.install(vendor.plugin, into: folder, as: vendor.plugin) }
        let gateway = try await TestGateway(folder: folder, watch: false, configure: configure)
        self.gateway = gateway
        return gateway
    }

    func stop() async {
        await gateway?.stop()
        fakes.forEach { $0.stop() }
        for vendor in vendors {
            unsetenv(vendor.keyVariable)
            unsetenv(vendor.baseURLVariable)
        }
    }
}
