// Splits a document's text into overlapping chunks of a few hundred words, each keeping its page
// and the heading it sits under (Markdown `#` headings; numbered or upper-case title lines in PDFs);
// transcript segments grouped with their times.
import Foundation
import PrismStore

struct TextChunker {
    var chunkWords = IndexLimits.chunkWords
    var overlapWords = IndexLimits.overlapWords

    /// How headings are recognised.
    enum Style {
        /// `# Title`, `## Section` ... set the heading path.
        case markdown
        /// Short lines numbered like "3.2 Installing" or written in capitals are headings.
        case plain
    }

    /// The chunks of `pages` (page number, text) in order; the heading carries over page breaks.
    func chunks(_ pages: [(page: Int, text: String)], style: Style) -> [IndexChunk] {
        var result: [IndexChunk] = []
        var path: [(level: Int, title: String)] = []
        for (page, text) in pages {
            // `fresh`: words of `words` that no chunk holds yet (the rest is the overlap).
            var words: [Substring] = [], fresh = 0
            var heading = path.map(\.title).joined(separator: " › ")
            func flush(keepOverlap: Bool) {
                if fresh > 0 { result.append(IndexChunk(page: page, heading: heading, text: words.joined(separator: " "))) }
                words = keepOverlap ? Array(words.suffix(overlapWords)) : []
                fresh = 0
            }
            var inFence = false
            for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if style == .markdown, trimmed.hasPrefix("```") { inFence.toggle() }
                // A heading's words stay in the text too: a section may be nothing but its title.
                var body = String(line)
                if !inFence, let (level, title) = Self.heading(trimmed, style: style) {
                    // A new section starts a new chunk, without overlap from the one before.
                    flush(keepOverlap: false)
                    path.removeAll { $0.level >= level }
                    path.append((level, title))
                    heading = path.map(\.title).joined(separator: " › ")
                    body = title
                }
                for word in body.split(whereSeparator: \.isWhitespace) {
                    words.append(word)
                    fresh += 1
                    if words.count >= chunkWords { flush(keepOverlap: true) }
                }
            }
            flush(keepOverlap: false)
        }
        return result
    }

    /// Transcript segments grouped into chunks of about `chunkWords` words, each spanning its
    /// first segment's start to its last one's end (segments are never cut, so no overlap).
    func chunks(segments: [(start: Double, end: Double, text: String)]) -> [IndexChunk] {
        var result: [IndexChunk] = []
        var words: [Substring] = [], start = 0.0, end = 0.0
        for segment in segments {
            if words.isEmpty { start = segment.start }
            words += segment.text.split(whereSeparator: \.isWhitespace)
            end = segment.end
            if words.count >= chunkWords {
                result.append(IndexChunk(page: 0, heading: "", text: words.joined(separator: " "), startSeconds: start, endSeconds: end))
                words = []
            }
        }
        if !words.isEmpty { result.append(IndexChunk(page: 0, heading: "", text: words.joined(separator: " "), startSeconds: start, endSeconds: end)) }
        return result
    }

    /// The level and title of a heading line, or nil.
    static func heading(_ line: String, style: Style) -> (Int, String)? {
        guard !line.isEmpty else { return nil }
        switch style {
        case .markdown:
            let hashes = line.prefix { $0 == "#" }.count
            guard (1...6).contains(hashes), line.dropFirst(hashes).first == " " else { return nil }
            let title = line.dropFirst(hashes).trimmingCharacters(in: .whitespaces)
            return title.isEmpty ? nil : (hashes, title)
        case .plain:
            let words = line.split(separator: " ")
            guard words.count <= 10, line.count <= 80, let last = line.last, !".,;:".contains(last) else { return nil }
            // "3.2 Installing the tools": the number's depth is the level.
            if let number = words.first, number.first?.isNumber == true,
               number.allSatisfy({ $0.isNumber || $0 == "." }), words.count > 1, words[1].first?.isUppercase == true {
                return (number.split(separator: ".").count, line)
            }
            let letters = line.filter(\.isLetter)
            if letters.count >= 4, letters.allSatisfy(\.isUppercase) { return (1, line) }
            // "Chapter Two: Flowers": every longer word capitalised, as titles are and wrapped lines of prose are not.
            let long = words.filter { $0.filter(\.isLetter).count >= 4 }
            if words.count <= 8, long.count >= 2, long.allSatisfy({ $0.first?.isUppercase == true }) { return (1, line) }
            return nil
        }
    }
}
