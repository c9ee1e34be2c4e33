// Runs a vendor fake of tools/fakes/ (openai_fake.py, anthropic_fake.py) as a subprocess on an
// ephemeral port for the vendor plugin tests, and reads the JSON-lines log of what it received.
import Foundation
import XCTest

struct FakeFailure: Error, CustomStringConvertible {
    let description: String
}

final class OpenAIFake {
    /// How long the fake may take to start listening before the test fails.
    static let startSeconds = 10.0

    let port: Int
    let logPath: String
    private let process: Process

    var baseURL: String { "http://127.0.0.1:\(port)/v1" }

    /// Starts the fake; with a `key`, requests without `Authorization: Bearer key` get 401.
    init(key: String? = nil, script name: String = "openai_fake.py") throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let script = root.appendingPathComponent("tools/fakes/\(name)").path
        logPath = NSTemporaryDirectory() + "openai-fake-\(UUID().uuidString).jsonl"
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
            throw FakeFailure(description: "the fake \(name) did not start (said '\(text)')")
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
