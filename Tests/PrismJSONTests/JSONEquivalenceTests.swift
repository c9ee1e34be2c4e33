// JSON equivalence (what JSON Schema's const, enum and uniqueItems compare by): numbers by value,
// objects whatever their member order, and a hash that agrees, so a Set finds repeats.
import PrismJSON
import XCTest

final class JSONEquivalenceTests: XCTestCase {
    private func json(_ text: String) throws -> JSONValue { try JSONValue.parse(text) }

    func testNumbersByValueAndObjectsWhateverTheirOrder() throws {
        XCTAssertTrue(try json("1").isEquivalent(to: json("1.0")))
        XCTAssertTrue(try json("0").isEquivalent(to: json("-0")))
        XCTAssertTrue(try json(#"{"a":1,"b":[1,{"c":null}]}"#).isEquivalent(to: json(#"{"b":[1.0,{"c":null}],"a":1e0}"#)))
        XCTAssertFalse(try json(#"{"a":1,"b":[1,{"c":null}]}"#).isEquivalent(to: json(#"{"a":1,"b":[{"c":null},1]}"#)), "array order counts")
        XCTAssertFalse(try json(#"{"a":1}"#).isEquivalent(to: json(#"{"a":1,"b":2}"#)))
        XCTAssertFalse(try json("1").isEquivalent(to: json("true")))
        XCTAssertFalse(try json("0").isEquivalent(to: json("false")))
        XCTAssertFalse(try json("null").isEquivalent(to: json("0")))
        XCTAssertFalse(try json("[]").isEquivalent(to: json("{}")))
        XCTAssertTrue(try json(#"{"a":1,"a":2}"#).isEquivalent(to: json(#"{"a":2}"#)), "a repeated key counts with its last value")
        XCTAssertNotEqual(try json(#"{"a":1,"b":2}"#), try json(#"{"b":2,"a":1}"#), "== stays structural")
    }

    func testStringsCompareByCodePoints() throws {
        // "é" precomposed and "e" + combining acute are canonically equivalent but different JSON.
        XCTAssertFalse(JSONValue.string("\u{E9}").isEquivalent(to: .string("e\u{301}")))
        XCTAssertEqual(Set([JSONEquivalent(.string("\u{E9}")), JSONEquivalent(.string("e\u{301}"))]).count, 2)
    }

    func testEquivalentValuesHashAlike() throws {
        let values = try [json(#"{"a":1,"b":[1,2]}"#), json(#"{"b":[1.0,2],"a":1}"#), json("1"), json("1.0"), json("true"), json("[1,2]")]
        XCTAssertEqual(Set(values.map(JSONEquivalent.init)).count, 4)
    }
}
