// The index's chunker: chunk size and overlap, pages kept, Markdown heading paths (code fences are
// not headings), and the headings recognised in PDF text layers.
import XCTest
@testable import PrismServer

final class TextChunkerTests: XCTestCase {
    func testLongTextIsCutIntoOverlappingChunks() {
        let words = (1...500).map { "w\($0)" }
        let chunks = TextChunker(chunkWords: 200, overlapWords: 20).chunks([(3, words.joined(separator: " "))], style: .plain)
        XCTAssertEqual(chunks.count, 3)
        XCTAssertTrue(chunks.allSatisfy { $0.page == 3 })
        XCTAssertEqual(chunks[0].text.split(separator: " ").count, 200)
        XCTAssertTrue(chunks[1].text.hasPrefix("w181 "), "the next chunk repeats the last 20 words")
        XCTAssertTrue(chunks[2].text.hasSuffix(" w500"))
        XCTAssertEqual(chunks[2].text.split(separator: " ").first, "w361")
    }

    func testPagesAreNeverMixed() {
        let chunks = TextChunker().chunks([(1, "alpha beta"), (2, "gamma")], style: .plain)
        XCTAssertEqual(chunks.map(\.page), [1, 2])
        XCTAssertEqual(chunks.map(\.text), ["alpha beta", "gamma"])
    }

    func testMarkdownHeadingsMakeAPath() {
        let text = "# Setup\nintro\n## Debian\napt-get install\n```\n# not a heading\n```\n# Usage\nrun it\n"
        let chunks = TextChunker().chunks([(0, text)], style: .markdown)
        XCTAssertEqual(chunks.map(\.heading), ["Setup", "Setup › Debian", "Usage"])
        XCTAssertEqual(chunks[1].text, "Debian apt-get install ``` # not a heading ```")
        XCTAssertEqual(chunks[0].text, "Setup intro", "a heading's words are searchable in its chunk")
    }

    func testHeadingsInPDFText() {
        XCTAssertEqual(TextChunker.heading("3.2 Installing the tools", style: .plain)?.0, 2)
        XCTAssertEqual(TextChunker.heading("CONTENTS", style: .plain)?.0, 1)
        XCTAssertNotNil(TextChunker.heading("Chapter Two: Flowers", style: .plain))
        XCTAssertNil(TextChunker.heading("The quetzal lives in cloud forests.", style: .plain))
        XCTAssertNil(TextChunker.heading("Since: 2.0", style: .plain))
        XCTAssertNil(TextChunker.heading("and the rest of a wrapped line of prose without an end", style: .plain))
    }
}
