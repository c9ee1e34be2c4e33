// The state of one Converse stream: the history every turn sends, the tool calls awaiting results,
// and its bounds (turns, bytes held, tool-result images kept). Tool-result images older than the
// kept count become a short text placeholder, so a long agent run neither resends nor holds every
// screenshot; each turn's `routed` event says what was elided.
import Foundation
import PrismMedia
import PrismProviders
import PrismRPC

/// Converse's bounds (the config file's `converse` object); each default is named and explained.
public struct ConverseLimits: Sendable, Equatable {
    /// Model turns per stream. An agent that has not finished in 50 turns is most likely looping,
    /// and every turn resends the whole history, so its cost grows with the square of the turns.
    public static let defaultMaxTurns = 50
    /// Bytes of history held per stream (texts, tool arguments, media as the client sent them):
    /// 64 MiB is twice the largest request a vendor takes (Anthropic's 32 MB), media being held
    /// as sent and fitted, smaller, for each turn.
    public static let defaultMaxHistoryBytes = 64 << 20
    /// How long the client may take to run its tools and answer: 5 minutes covers a browser
    /// action and its screenshot many times over, while a client that hung without closing its
    /// stream does not hold the history for ever.
    public static let defaultToolResultTimeoutSeconds = 300.0
    /// Tool-result images sent each turn, the most recent: an agent acts on the screen it sees
    /// now, and each older screenshot would cost ~1,600 input tokens again on every turn.
    public static let defaultKeptToolImages = 3

    public var maxTurns = defaultMaxTurns
    public var maxHistoryBytes = defaultMaxHistoryBytes
    public var toolResultTimeoutSeconds = defaultToolResultTimeoutSeconds
    public var keptToolImages = defaultKeptToolImages

    public init() {}

    /// Applies the config file's values; one out of range is refused naming its setting.
    mutating func apply(_ file: ConfigFile.Converse) throws {
        func atLeast<T: Comparable>(_ value: T?, _ minimum: T, _ name: String) throws -> T? {
            guard let value else { return nil }
            guard value >= minimum else { throw SettingsError("converse.\(name) must be \(minimum) or more, not \(value)") }
            return value
        }
        maxTurns = try atLeast(file.max_turns, 1, "max_turns") ?? maxTurns
        maxHistoryBytes = try atLeast(file.max_history_bytes, 1, "max_history_bytes") ?? maxHistoryBytes
        toolResultTimeoutSeconds = try atLeast(file.tool_result_timeout_seconds, 0.001, "tool_result_timeout_seconds") ?? toolResultTimeoutSeconds
        keptToolImages = try atLeast(file.kept_tool_images, 0, "kept_tool_images") ?? keptToolImages
    }
}

/// One Converse stream's history and where it stands; see the file's opening comment.
struct Conversation {
    let limits: ConverseLimits
    /// The start request whose `messages` are the history so far (tools, system, route stay).
    private(set) var request: GenerationRequest
    /// Per message of the history: the turn whose tool calls it answers (0: the start request's).
    private var answersTurn: [Int]
    /// Model turns started so far.
    private(set) var turns = 0
    /// The last turn's tool calls still awaiting results, in the order the model made them.
    private(set) var awaited: [(id: String, name: String)] = []
    /// For every tool-result image elided so far, the turn its result answered.
    private var elidedTurns: [Int] = []

    init(start: GenerationRequest, limits: ConverseLimits) throws {
        self.limits = limits
        self.request = start
        self.answersTurn = Array(repeating: 0, count: start.messages.count)
        elide()
        try checkBytes()
    }

    /// Fetches the media of the history that are still only a URI (those of messages added since
    /// the last turn), keeping the bytes so that later turns do not fetch them again; returns the
    /// fetcher's report lines for this turn's `routed`.
    mutating func fetchMedia(with fetcher: MediaFetcher) async throws -> [String] {
        let (resolved, report) = try await fetcher.resolve(request)
        guard !report.isEmpty else { return [] }
        request.messages = resolved.messages
        try checkBytes()
        return report
    }

    /// Starts the next model turn: the request to send, and the line its `routed` event adds
    /// about elided images (nil when none were). RESOURCE_EXHAUSTED past `maxTurns`.
    mutating func startTurn() throws -> (GenerationRequest, String?) {
        guard turns < limits.maxTurns else {
            throw RPCError(.resourceExhausted, "converse.max_turns: this conversation has had its \(limits.maxTurns) model turns, the limit; start a new Converse to go on")
        }
        turns += 1
        return (request, elisionNote)
    }

    /// Adds the model's answer of the current turn (its text and tool calls) to the history; its
    /// tool calls then await results.
    mutating func recordAnswer(text: String, toolCalls: [(id: String, name: String, argumentsJSON: String)]) throws {
        var parts: [ContentPart] = text.isEmpty ? [] : [.text(text)]
        parts += toolCalls.map { .toolCall(id: $0.id, name: $0.name, argumentsJSON: $0.argumentsJSON) }
        // An empty answer adds nothing: vendors refuse an assistant message without content.
        if !parts.isEmpty { append(ChatMessage(role: .assistant, parts: parts)) }
        awaited = toolCalls.map { ($0.id, $0.name) }
        try checkBytes()
    }

    /// Adds the client's results for the awaited tool calls, which must answer each of them
    /// exactly once (INVALID_ARGUMENT naming the id otherwise), as one user message in the order
    /// the model made the calls.
    mutating func addToolResults(_ results: [(id: String, content: [ContentPart], isError: Bool)]) throws {
        var byID: [String: (content: [ContentPart], isError: Bool)] = [:]
        let list = awaited.map { "'\($0.id)'" }.joined(separator: ", ")
        for (i, result) in results.enumerated() {
            guard awaited.contains(where: { $0.id == result.id }) else {
                throw RPCError(.invalidArgument, "tool_results.results[\(i)].tool_call_id: '\(result.id)' is not a tool call of turn \(turns) awaiting a result (awaiting \(list))")
            }
            guard byID[result.id] == nil else {
                throw RPCError(.invalidArgument, "tool_results.results[\(i)].tool_call_id: '\(result.id)' is answered twice")
            }
            byID[result.id] = (result.content, result.isError)
        }
        if let missing = awaited.first(where: { byID[$0.id] == nil }) {
            throw RPCError(.invalidArgument, "tool_results: no result for tool call '\(missing.id)' (\(missing.name)) of turn \(turns); every tool call of the turn needs one")
        }
        append(ChatMessage(role: .user, parts: awaited.map { call in
            let result = byID[call.id]!
            return .toolResult(toolCallID: call.id, content: result.content, isError: result.isError)
        }))
        awaited = []
        elide()
        try checkBytes()
    }

    /// Adds a user message after an end of turn.
    mutating func addUser(_ message: ChatMessage) throws {
        append(message)
        try checkBytes()
    }

    private mutating func append(_ message: ChatMessage) {
        request.messages.append(message)
        answersTurn.append(turns)
    }

    /// What the next turn's `routed` adds, e.g. "elided 2 older screenshots (tool results of turns 1–2), ...".
    var elisionNote: String? {
        guard !elidedTurns.isEmpty else { return nil }
        let n = elidedTurns.count
        return "elided \(n) older screenshot\(n == 1 ? "" : "s") (tool results of \(Self.describe(turns: elidedTurns))), keeping the \(limits.keptToolImages) most recent"
    }

    /// "turn 2", "turns 1–3", "turns 1, 3–4"; turn 0 is "the start request".
    static func describe(turns: [Int]) -> String {
        let sorted = Array(Set(turns)).sorted()
        var ranges: [(Int, Int)] = []
        for t in sorted where t > 0 {
            if let last = ranges.last, last.1 + 1 == t { ranges[ranges.count - 1].1 = t } else { ranges.append((t, t)) }
        }
        var phrases: [String] = sorted.first == 0 ? ["the start request"] : []
        if !ranges.isEmpty {
            let numbers = ranges.map { $0.0 == $0.1 ? "\($0.0)" : "\($0.0)–\($0.1)" }.joined(separator: ", ")
            phrases.append((sorted.filter { $0 > 0 }.count == 1 ? "turn " : "turns ") + numbers)
        }
        return phrases.joined(separator: " and ")
    }

    /// Replaces the tool-result images beyond the `keptToolImages` most recent with a
    /// placeholder, for good: an image once too old only gets older.
    private mutating func elide() {
        var kept = 0
        for m in request.messages.indices.reversed() {
            for p in request.messages[m].parts.indices.reversed() {
                guard case .toolResult(let id, var content, let isError) = request.messages[m].parts[p] else { continue }
                var changed = false
                for i in content.indices.reversed() {
                    guard case .media(let media) = content[i], MediaSniffer.sniff(media.data).kind == .image else { continue }
                    if kept < limits.keptToolImages {
                        kept += 1
                        continue
                    }
                    let turn = answersTurn[m]
                    content[i] = .text("[screenshot elided by the gateway: an older tool-result image (\(Self.describe(turns: [turn]))); only the \(limits.keptToolImages) most recent are sent]")
                    elidedTurns.append(turn)
                    changed = true
                }
                if changed { request.messages[m].parts[p] = .toolResult(toolCallID: id, content: content, isError: isError) }
            }
        }
    }

    /// Bytes the history holds: texts, tool calls and media as received.
    var historyBytes: Int {
        func size(_ part: ContentPart) -> Int {
            switch part {
            case .text(let text): return text.utf8.count
            case .media(let media): return media.data.count + media.mimeType.utf8.count + media.name.utf8.count
            case let .toolCall(id, name, arguments): return id.utf8.count + name.utf8.count + arguments.utf8.count
            case let .toolResult(id, content, _): return id.utf8.count + content.reduce(0) { $0 + size($1) }
            }
        }
        return request.messages.reduce(0) { total, message in total + message.parts.reduce(0) { $0 + size($1) } }
    }

    private func checkBytes() throws {
        let bytes = historyBytes
        guard bytes <= limits.maxHistoryBytes else {
            throw RPCError(.resourceExhausted, "converse.max_history_bytes: the conversation would hold \(bytes) bytes, over the limit of \(limits.maxHistoryBytes); start a new Converse with a shorter history")
        }
    }
}
