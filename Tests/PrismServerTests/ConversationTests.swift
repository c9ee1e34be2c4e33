// Converse's history without a server: older tool-result images elided with the turns named, tool
// results that must answer each awaited call once, the turn and byte limits, and the `converse`
// settings of the config file refused out of range naming the setting.
import Foundation
import PrismProviders
import PrismRPC
@testable import PrismServer
import XCTest

final class ConversationTests: XCTestCase {
    /// The PNG signature is all the elision looks at (it sniffs, never trusting the declared type).
    private let screenshot = ContentPart.media(MediaInput(mimeType: "application/octet-stream",
                                                          data: Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) + Data(count: 64)))

    private func conversation(_ limits: ConverseLimits = ConverseLimits()) throws -> Conversation {
        try Conversation(start: GenerationRequest(messages: [ChatMessage(role: .user, parts: [.text("go")])]), limits: limits)
    }

    /// One turn that calls tool `t<turn>` and gets a text and a screenshot back.
    private func screenshotTurn(_ c: inout Conversation) throws -> String? {
        let (_, note) = try c.startTurn()
        let id = "t\(c.turns)"
        try c.recordAnswer(text: "step", toolCalls: [(id, "shot", "{}")])
        try c.addToolResults([(id, [.text("done"), screenshot], false)])
        return note
    }

    private func images(_ c: Conversation) -> Int {
        c.request.messages.flatMap(\.parts).reduce(0) { count, part in
            guard case .toolResult(_, let content, _) = part else { return count }
            return count + content.filter { if case .media = $0 { return true } else { return false } }.count
        }
    }

    func testOlderToolImagesAreElidedAndEachTurnSaysWhich() throws {
        var limits = ConverseLimits()
        limits.keptToolImages = 2
        var c = try conversation(limits)
        var notes: [String?] = []
        for _ in 1...4 { notes.append(try screenshotTurn(&c)) }
        let (_, note) = try c.startTurn()
        notes.append(note)
        XCTAssertEqual(notes[0...2], [nil, nil, nil])
        XCTAssertEqual(notes[3], "elided 1 older screenshot (tool results of turn 1), keeping the 2 most recent")
        XCTAssertEqual(notes[4], "elided 2 older screenshots (tool results of turns 1–2), keeping the 2 most recent")
        XCTAssertEqual(images(c), 2)
        guard case .toolResult("t1", let content, false) = c.request.messages[2].parts[0], case .text(let placeholder) = content[1] else {
            return XCTFail("turn 1's result should hold its text and a placeholder: \(c.request.messages[2].parts)")
        }
        XCTAssertTrue(placeholder.contains("elided") && placeholder.contains("turn 1"), placeholder)
    }

    func testKeepingNoImagesElidesEveryOne() throws {
        var limits = ConverseLimits()
        limits.keptToolImages = 0
        var c = try conversation(limits)
        _ = try screenshotTurn(&c)
        XCTAssertEqual(images(c), 0)
        XCTAssertEqual(c.elisionNote, "elided 1 older screenshot (tool results of turn 1), keeping the 0 most recent")
    }

    func testTurnsAreDescribedAsRanges() {
        XCTAssertEqual(Conversation.describe(turns: [3]), "turn 3")
        XCTAssertEqual(Conversation.describe(turns: [2, 1, 3, 3]), "turns 1–3")
        XCTAssertEqual(Conversation.describe(turns: [1, 3, 4, 7]), "turns 1, 3–4, 7")
        XCTAssertEqual(Conversation.describe(turns: [0, 0, 2]), "the start request and turn 2")
    }

    func testToolResultsAnswerEveryAwaitedCallOnce() throws {
        var c = try conversation()
        _ = try c.startTurn()
        try c.recordAnswer(text: "", toolCalls: [("a", "shot", "{}"), ("b", "read", "{}")])
        let cases: [([(id: String, content: [ContentPart], isError: Bool)], String)] = [
            ([("a", [], false)], "tool_results: no result for tool call 'b' (read) of turn 1"),
            ([("a", [], false), ("x", [], false)], "tool_results.results[1].tool_call_id: 'x' is not a tool call of turn 1"),
            ([("a", [], false), ("a", [], false)], "tool_results.results[1].tool_call_id: 'a' is answered twice"),
        ]
        for (results, message) in cases {
            XCTAssertThrowsError(try c.addToolResults(results)) { error in
                XCTAssertEqual((error as? RPCError)?.code, .invalidArgument)
                XCTAssertTrue("\(error)".contains(message), "\(error)")
            }
        }
        // In any order; the history keeps the model's.
        try c.addToolResults([("b", [.text("2")], false), ("a", [.text("1")], true)])
        XCTAssertTrue(c.awaited.isEmpty)
        let ids = c.request.messages.last!.parts.map { part -> String in
            if case .toolResult(let id, _, _) = part { return id } else { return "?" }
        }
        XCTAssertEqual(ids, ["a", "b"])
    }

    func testTurnAndByteLimitsNameTheirSetting() throws {
        var limits = ConverseLimits()
        limits.maxTurns = 2
        limits.maxHistoryBytes = 100
        var c = try conversation(limits)
        for _ in 1...2 {
            _ = try c.startTurn()
            try c.recordAnswer(text: "ok", toolCalls: [])
        }
        XCTAssertThrowsError(try c.startTurn()) { error in
            XCTAssertEqual((error as? RPCError)?.code, .resourceExhausted)
            XCTAssertTrue("\(error)".contains("converse.max_turns"), "\(error)")
        }
        XCTAssertThrowsError(try c.addUser(ChatMessage(role: .user, parts: [.text(String(repeating: "x", count: 100))]))) { error in
            XCTAssertEqual((error as? RPCError)?.code, .resourceExhausted)
            XCTAssertTrue("\(error)".contains("converse.max_history_bytes"), "\(error)")
        }
    }

    func testConverseSettingsFromTheConfigFile() throws {
        func file(_ json: String) throws -> ConfigFile { try JSONDecoder().decode(ConfigFile.self, from: Data(json.utf8)) }
        var settings = ServerSettings()
        XCTAssertEqual(settings.converse, ConverseLimits())
        try settings.apply(try file(#"{"converse": {"max_turns": 7, "tool_result_timeout_seconds": 0.5, "kept_tool_images": 0}}"#))
        XCTAssertEqual(settings.converse.maxTurns, 7)
        XCTAssertEqual(settings.converse.toolResultTimeoutSeconds, 0.5)
        XCTAssertEqual(settings.converse.keptToolImages, 0)
        XCTAssertEqual(settings.converse.maxHistoryBytes, ConverseLimits.defaultMaxHistoryBytes)
        for (json, message) in [(#"{"converse": {"max_turns": 0}}"#, "converse.max_turns must be 1 or more, not 0"),
                                (#"{"converse": {"kept_tool_images": -1}}"#, "converse.kept_tool_images must be 0 or more"),
                                (#"{"converse": {"tool_result_timeout_seconds": 0}}"#, "converse.tool_result_timeout_seconds")] {
            XCTAssertThrowsError(try settings.apply(try file(json)), json) { error in
                XCTAssertTrue("\(error)".contains(message), "\(error)")
            }
        }
    }
}
