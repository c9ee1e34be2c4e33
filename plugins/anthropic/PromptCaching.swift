// Anthropic's prompt cache: the large stable prefixes of a request (a long system prompt, PDF
// documents, images over a size threshold) get cache_control {"type": "ephemeral"}, so repeated
// analyses of one document are billed at the cache rate; the answer's usage reports the tokens.
import Foundation
import PrismPluginKit

enum PromptCaching {
    /// About 1,024 tokens, the shortest prefix Sonnet and Opus cache (the API ignores a shorter
    /// one, but it still counts against the breakpoint limit).
    static let minSystemCharacters = 4096
    /// Images from this size on are marked: one this large is about 1,000 tokens or more. PDFs
    /// are always marked: every page is billed as an image plus its text.
    static let minImageBytes = 32 * 1024
    /// The API refuses more than four cache_control blocks in one request.
    static let maxBreakpoints = 4

    private static let ephemeral: [String: Any] = ["type": "ephemeral"]

    /// The `system` field: the text, or a marked text block when it is long enough to cache.
    static func system(_ text: String) -> Any {
        guard text.count >= minSystemCharacters else { return text }
        return [["type": "text", "text": text, "cache_control": ephemeral]]
    }

    /// A message's blocks (one per part) with its PDFs and large images marked.
    static func marked(_ blocks: [[String: Any]], parts: [ProviderRequest.Part]) -> [[String: Any]] {
        zip(blocks, parts).map { block, part in
            guard case let .media(mime, data, _) = part, mime == "application/pdf" || data.count >= minImageBytes else { return block }
            var block = block
            block["cache_control"] = ephemeral
            return block
        }
    }

    /// Keeps at most `maxBreakpoints` marks: the system's, then the last marked media (a mark
    /// caches everything before it, so the last ones cover the most).
    static func limitBreakpoints(_ body: inout [String: Any]) {
        guard var messages = body["messages"] as? [[String: Any]] else { return }
        let systemMarks = body["system"] is [[String: Any]] ? 1 : 0
        var marks: [(message: Int, block: Int)] = []
        for (m, message) in messages.enumerated() {
            for (b, block) in (message["content"] as? [[String: Any]] ?? []).enumerated() where block["cache_control"] != nil {
                marks.append((m, b))
            }
        }
        let excess = marks.count - (maxBreakpoints - systemMarks)
        guard excess > 0 else { return }
        for (m, b) in marks.prefix(excess) {
            var content = messages[m]["content"] as! [[String: Any]]
            content[b]["cache_control"] = nil
            messages[m]["content"] = content
        }
        body["messages"] = messages
    }
}
