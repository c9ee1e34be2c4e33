// A complete answer as the response cache keeps it: the text and tool calls in their order, the
// usage and the stop reason, recorded from the events a model streamed, encoded as JSON for the
// store, and replayed as the same events (text in chunks) with the usage's cost at zero.
import Foundation

struct CachedAnswer: Codable, Equatable {
    enum Item: Codable, Equatable {
        case text(String)
        case toolCall(id: String, name: String, argumentsJSON: String)
    }

    struct Tokens: Codable, Equatable {
        var input: UInt64
        var output: UInt64
        var image: UInt64
        var audioSeconds: Double
        var cacheRead: UInt64?
        var cacheWrite: UInt64?
    }

    var provider: String
    var model: String
    var items: [Item] = []
    var tokens: Tokens?
    var stopReason: Int

    func encoded() -> Data { (try? JSONEncoder().encode(self)) ?? Data() }

    static func decode(_ data: Data) -> CachedAnswer? { try? JSONDecoder().decode(CachedAnswer.self, from: data) }

    /// The events of a hit: the text in chunks of `chunkCharacters`, tool calls, usage (cost 0:
    /// no vendor was paid), finished. `routed` comes before, from the caller.
    func events(chunkCharacters: Int = ProviderLimits.cacheReplayChunkCharacters) -> [ProviderEvent] {
        var events: [ProviderEvent] = []
        for item in items {
            switch item {
            case .text(let text):
                var rest = Substring(text)
                while !rest.isEmpty {
                    events.append(.text(String(rest.prefix(chunkCharacters))))
                    rest = rest.dropFirst(chunkCharacters)
                }
            case let .toolCall(id, name, arguments):
                events.append(.toolCall(id: id, name: name, argumentsJSON: arguments))
            }
        }
        if let tokens {
            var usage = Usage()
            usage.inputTokens = tokens.input
            usage.outputTokens = tokens.output
            usage.imageTokens = tokens.image
            usage.audioSeconds = tokens.audioSeconds
            usage.cacheReadTokens = tokens.cacheRead ?? 0
            usage.cacheWriteTokens = tokens.cacheWrite ?? 0
            events.append(.usage(usage))
        }
        events.append(.finished(stopReason: stopReason))
        return events
    }
}

/// Records one attempt's events into a CachedAnswer; `answer` is nil unless the attempt was
/// complete and worth keeping. Thread-safe: `lock` guards `answer`, `finished` and `unrecordable`.
final class AnswerRecorder: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`.
    private var answer: CachedAnswer
    private var finished = false
    private var unrecordable = false

    init(provider: String, model: String) {
        answer = CachedAnswer(provider: provider, model: model, stopReason: 0)
    }

    func record(_ event: ProviderEvent) {
        lock.withLock {
            switch event {
            case .text(let text):
                if case .text(let previous)? = answer.items.last {
                    answer.items[answer.items.count - 1] = .text(previous + text)
                } else {
                    answer.items.append(.text(text))
                }
            case let .toolCall(id, name, arguments):
                answer.items.append(.toolCall(id: id, name: name, argumentsJSON: arguments))
            case .usage(let usage):
                answer.tokens = .init(input: usage.inputTokens, output: usage.outputTokens, image: usage.imageTokens, audioSeconds: usage.audioSeconds,
                                      cacheRead: usage.cacheReadTokens, cacheWrite: usage.cacheWriteTokens)
            case .finished(let reason):
                answer.stopReason = reason
                finished = true
            case .media, .batchStatus, .batchResult:
                unrecordable = true  // media answers are not cached (text outputs only)
            case .error:
                break
            }
        }
    }

    /// The answer, if it ended with a `finished` whose stop reason says it is whole: cut at
    /// max_tokens, refused, or without a reason, it is not what a repeat should get.
    var completeAnswer: CachedAnswer? {
        lock.withLock {
            guard finished, !unrecordable, Self.keptStopReasons.contains(answer.stopReason) else { return nil }
            return answer
        }
    }

    /// prism.v1.StopReason: END_TURN, TOOL_USE, SEQUENCE.
    static let keptStopReasons: Set<Int> = [1, 3, 4]
}
