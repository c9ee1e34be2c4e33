// Structured extraction on top of the Generator: the input goes out with the schema as the
// request's response schema (each plugin uses its vendor's strongest mechanism), every answer is
// checked with Prism's own validator, and an invalid one gets repair rounds with the model's
// previous answer and the violations fed back. Nothing that fails the schema is returned.
import Foundation
import PrismJSON
import PrismSchema

/// A valid extraction and what it took.
public struct Extraction: Sendable {
    /// Compact JSON text, valid against the schema.
    public var json: String
    /// Where the last (valid) answer came from.
    public var routed: RouteInfo
    /// Summed over every generation, repairs included.
    public var usage: Usage
    /// Generations made: 1, plus one per repair round.
    public var attempts: Int
}

/// Runs extractions through a Generator. Stateless between calls.
public struct Extractor: Sendable {
    /// Repair rounds after the first answer unless the config says otherwise.
    public static let defaultRepairs = 1
    /// No config may ask for more: each round costs a full generation.
    public static let maxRepairs = 3
    /// Violations quoted to the model in a repair round, and to the client in a final failure.
    static let quotedViolations = 20
    /// What the model is told in every extraction.
    static let systemPrompt = """
        You extract structured data from the user's input. Answer with exactly one JSON value that is \
        valid against the response schema you were given, with no other text. Use null or leave out \
        optional values that the input does not contain; never invent data.
        """
    static let defaultInstructions = "Extract the data described by the response schema from the input above."

    public let generator: Generator
    public let repairs: Int

    public init(generator: Generator, repairs: Int = Extractor.defaultRepairs) {
        self.generator = generator
        self.repairs = min(max(0, repairs), Self.maxRepairs)
    }

    /// The generation request of a first attempt: the input parts, then the instructions.
    public static func request(input: [ContentPart], schemaJSON: String, instructions: String) -> GenerationRequest {
        let ask = instructions.trimmingCharacters(in: .whitespacesAndNewlines)
        var request = GenerationRequest(messages: [ChatMessage(role: .user, parts: input + [.text(ask.isEmpty ? defaultInstructions : ask)])])
        request.system = systemPrompt
        request.responseSchemaJSON = schemaJSON
        // Extraction wants the likeliest reading, not variety.
        request.temperature = 0
        return request
    }

    /// Generates until an answer is valid against `schema`, at most `repairs` times more than once.
    /// Throws ProviderFailure: the Generator's own, or FAILED_PRECONDITION naming the failing
    /// paths when no answer was valid.
    public func extract(_ request: GenerationRequest, schema: JSONSchema) async throws -> Extraction {
        var request = request
        var usage = Usage()
        var violations: [String] = []
        for attempt in 1...(repairs + 1) {
            let answer = AnswerCollector()
            try await generator.generate(request) { output in answer.take(output) }
            let result = answer.result
            usage.add(result.usage)
            violations = Self.check(result.text, against: schema)
            if violations.isEmpty, let routed = result.routed {
                return Extraction(json: Self.compact(result.text), routed: routed, usage: usage, attempts: attempt)
            }
            // The next round sees the answer as the model gave it, and what is wrong with it.
            request.messages.append(ChatMessage(role: .assistant, parts: [.text(result.text.isEmpty ? "(no answer)" : result.text)]))
            request.messages.append(ChatMessage(role: .user, parts: [.text(Self.repairPrompt(violations))]))
        }
        let shown = violations.prefix(Self.quotedViolations).joined(separator: "; ")
        let more = violations.count > Self.quotedViolations ? " (and \(violations.count - Self.quotedViolations) more)" : ""
        throw ProviderFailure(.failedPrecondition, "no answer valid against the schema after \(repairs + 1) attempt\(repairs == 0 ? "" : "s"): \(shown)\(more)")
    }

    /// The violations of an answer as "path: message (keyword)" lines; empty when it is valid.
    static func check(_ text: String, against schema: JSONSchema) -> [String] {
        let value: JSONValue
        do {
            value = try JSONValue.parse(unfenced(text))
        } catch {
            return ["the answer is not JSON (\(error))"]
        }
        return schema.validate(value).map { $0.description }
    }

    /// The answer without surrounding whitespace or a Markdown code fence, which models without
    /// a native JSON mode sometimes add.
    static func unfenced(_ text: String) -> String {
        var body = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard body.hasPrefix("```"), body.hasSuffix("```"), body.count >= 6 else { return body }
        body = String(body.dropFirst(3).dropLast(3))
        if let newline = body.firstIndex(of: "\n") , !body[..<newline].contains("{"), !body[..<newline].contains("[") {
            body = String(body[body.index(after: newline)...])  // the fence's language tag ("json")
        }
        return body.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A valid answer as compact JSON (the parse cannot fail: `check` parsed the same text).
    static func compact(_ text: String) -> String {
        (try? JSONValue.parse(unfenced(text)).jsonText) ?? unfenced(text)
    }

    static func repairPrompt(_ violations: [String]) -> String {
        var lines = ["Your answer is not valid against the response schema:"]
        lines += violations.prefix(quotedViolations).map { "- \($0)" }
        if violations.count > quotedViolations { lines.append("- … and \(violations.count - quotedViolations) more") }
        lines.append("Answer again with the complete corrected JSON value only.")
        return lines.joined(separator: "\n")
    }
}

/// Gathers one generation's outputs: its last attempt's text and routing, and all usage (the
/// Extractor's, and a batch item's on the normal call path). Thread-safe: `lock` guards `collected`.
public final class AnswerCollector: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock` (emit calls come one after another, possibly from different threads).
    private var collected: (text: String, usage: Usage, routed: RouteInfo?) = ("", Usage(), nil)

    public init() {}

    public var result: (text: String, usage: Usage, routed: RouteInfo?) { lock.withLock { collected } }

    public func take(_ output: GenerationOutput) {
        lock.withLock {
            switch output {
            case .routed(let info):
                // A retry or fallback starts over: only the last attempt's answer counts.
                collected.text = ""
                collected.routed = info
            case .event(.text(let text)):
                collected.text += text
            case .event(.usage(let usage)):
                collected.usage.add(usage)
            default:
                break
            }
        }
    }
}

extension Usage {
    /// Adds another answer's counts and cost.
    mutating func add(_ other: Usage) {
        inputTokens += other.inputTokens
        outputTokens += other.outputTokens
        imageTokens += other.imageTokens
        audioSeconds += other.audioSeconds
        costUSDMicros += other.costUSDMicros
        cacheReadTokens += other.cacheReadTokens
        cacheWriteTokens += other.cacheWriteTokens
        savedUSDMicros += other.savedUSDMicros
    }
}
