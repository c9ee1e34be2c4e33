// Who a generation is for: the API key's name and the models it may use (auth.keys), set by the
// server around each call as a task-local, so every service's generations see it without passing
// it through each. The Generator checks the allow-list after planning and reports usage to the
// UsageMeter when the answer ends.
import Foundation

public struct Caller: Sendable, Equatable {
    /// The key's name ("" for a key without one).
    public var keyName: String
    /// The models this key may use; empty allows every model.
    public var models: ModelAllowList

    public init(keyName: String, models: ModelAllowList = ModelAllowList([])) {
        self.keyName = keyName
        self.models = models
    }

    /// The caller of the running task (nil: auth is off, or not inside a call).
    @TaskLocal public static var current: Caller?
}

/// Model names as globs: `*` matches any run of characters (slashes included), `?` one character;
/// anything else matches itself. "openai/*", "anthropic/claude-*", "local/tesseract".
public struct ModelAllowList: Sendable, Equatable {
    public let patterns: [String]

    public init(_ patterns: [String]) {
        self.patterns = patterns
    }

    /// Whether `model` ("provider/model") is allowed: always with no patterns.
    public func permits(_ model: String) -> Bool {
        patterns.isEmpty || patterns.contains { Self.matches(Array($0.utf8), Array(model.utf8)) }
    }

    /// Glob matching with one backtrack point (the last `*`): linear in practice, never exponential.
    static func matches(_ pattern: [UInt8], _ text: [UInt8]) -> Bool {
        var p = 0, t = 0
        var star: Int?, resume = 0
        while t < text.count {
            if p < pattern.count, pattern[p] == UInt8(ascii: "?") || (pattern[p] != UInt8(ascii: "*") && pattern[p] == text[t]) {
                p += 1
                t += 1
            } else if p < pattern.count, pattern[p] == UInt8(ascii: "*") {
                star = p
                resume = t
                p += 1
            } else if let s = star {
                p = s + 1
                resume += 1
                t = resume
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }
}

/// Where the Generator reports what each answer cost, once it has ended (well or not).
public protocol UsageMeter: Sendable {
    /// `requests` is 1 for the model that gave the answer, 0 for one that failed after spending;
    /// a cache hit comes with no tokens and no cost (the vendor was not called).
    func record(key: String, model: String, requests: Int64, usage: Usage) async
}

/// What one generation spent, per model; used by that generation's task alone (a lock still
/// guards it, since the relay of events may run on another executor).
final class UsageTally: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`, in first-use order.
    private var entries: [(model: String, requests: Int64, usage: Usage)] = []

    func add(_ usage: Usage, model: String) {
        lock.withLock {
            if let i = entries.firstIndex(where: { $0.model == model }) {
                entries[i].usage.inputTokens &+= usage.inputTokens
                entries[i].usage.outputTokens &+= usage.outputTokens
                entries[i].usage.costUSDMicros &+= usage.costUSDMicros
            } else {
                entries.append((model, 0, usage))
            }
        }
    }

    /// `model` gave the answer.
    func answered(by model: String) {
        lock.withLock {
            if let i = entries.firstIndex(where: { $0.model == model }) {
                entries[i].requests = 1
            } else {
                entries.append((model, 1, Usage()))
            }
        }
    }

    var all: [(model: String, requests: Int64, usage: Usage)] { lock.withLock { entries } }
}
