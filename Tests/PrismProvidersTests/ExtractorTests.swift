// The Extractor's own steps: reading a model's answer (fences, not JSON), the violations it feeds
// back, and the request of a first attempt. The whole loop runs against the vendor fakes in
// Tests/interop/test_extract.py.
import PrismSchema
import XCTest

@testable import PrismProviders

final class ExtractorTests: XCTestCase {
    private let schema = try! JSONSchema(text: """
        {"type": "object", "required": ["total"], "properties": {"total": {"type": "number", "minimum": 0}}}
        """)

    func testAnAnswerInACodeFenceIsReadWithoutIt() {
        XCTAssertEqual(Extractor.unfenced("```json\n{\"total\": 1}\n```"), "{\"total\": 1}")
        XCTAssertEqual(Extractor.unfenced("  ```\n[1]\n```  "), "[1]")
        XCTAssertEqual(Extractor.unfenced("{\"total\": 1}"), "{\"total\": 1}")
        XCTAssertEqual(Extractor.check("```json\n{\"total\": 1}\n```", against: schema), [])
        XCTAssertEqual(Extractor.compact(" {\"total\" : 1.5 } "), "{\"total\":1.5}")
    }

    func testViolationsNameThePathAndKeyword() {
        let violations = Extractor.check("{\"total\": -3}", against: schema)
        XCTAssertEqual(violations.count, 1)
        XCTAssertTrue(violations[0].hasPrefix("/total: "), violations[0])
        XCTAssertTrue(violations[0].hasSuffix("(minimum)"), violations[0])
        let missing = Extractor.check("{}", against: schema)
        XCTAssertTrue(missing.contains { $0.contains("total") && $0.contains("required") }, "\(missing)")
    }

    func testAnAnswerThatIsNotJSONIsOneViolation() {
        let violations = Extractor.check("Sure! Here is the JSON you asked for.", against: schema)
        XCTAssertEqual(violations.count, 1)
        XCTAssertTrue(violations[0].hasPrefix("the answer is not JSON"), violations[0])
    }

    func testTheRepairPromptQuotesAtMostTwentyViolations() {
        let prompt = Extractor.repairPrompt((1...25).map { "/items/\($0): must be a string (type)" })
        XCTAssertTrue(prompt.contains("/items/20:"))
        XCTAssertFalse(prompt.contains("/items/21:"))
        XCTAssertTrue(prompt.contains("5 more"))
    }

    func testTheFirstRequestAsksForTheSchemaAfterTheInput() {
        let request = Extractor.request(input: [.text("Invoice 17")], schemaJSON: "{}", instructions: "  ")
        XCTAssertEqual(request.responseSchemaJSON, "{}")
        XCTAssertEqual(request.temperature, 0)
        guard case .text(let ask) = request.messages[0].parts.last else { return XCTFail("no instructions") }
        XCTAssertEqual(ask, Extractor.defaultInstructions)
    }
}
