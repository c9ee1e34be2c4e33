// A light JSON value for reading vendor stream chunks and schemas: what JSONParser produces, with
// lookups (`chunk["choices"]?[0]?["delta"]?["content"]?.string`) and a compact serializer for the
// parts passed on as JSON text (Gemini's functionCall args, Extract's answer). Cheaper than
// JSONSerialization's [String: Any] on every delta: no bridging, no dynamic casts.
import Foundation

/// A parsed JSON document. Objects keep their members in document order as (key, value) pairs:
/// the chunks vendors send hold a handful of keys, where a linear scan beats hashing.
public enum JSONValue: Sendable {
    case null
    case bool(Bool)
    /// Every JSON number as a Double (integers up to 2^53 exactly, larger ones rounded as in
    /// JavaScript); `int` and `uint64` read it back as an integer.
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    /// Parses a whole JSON document from UTF-8 bytes; throws JSONParseError naming the byte offset.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws -> JSONValue {
        try JSONParser.read(bytes) { try $0.readValue() }
    }

    /// Parses a whole JSON document from UTF-8 bytes.
    public static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        try bytes.withUnsafeBytes { try parse($0) }
    }

    /// Parses a whole JSON document from UTF-8 bytes.
    public static func parse(_ data: Data) throws -> JSONValue {
        try data.withUnsafeBytes { try parse($0) }
    }

    /// Parses a whole JSON document from its text.
    public static func parse(_ text: String) throws -> JSONValue {
        var text = text
        return try text.withUTF8 { try parse(UnsafeRawBufferPointer($0)) }
    }

    /// The member named `key` of an object (the last one when a key repeats, as JSONSerialization
    /// and most parsers do); nil for a missing key or a value that is not an object.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        var k = members.count
        while k > 0 {
            k -= 1
            if members[k].key == key { return members[k].value }
        }
        return nil
    }

    /// The element at `index` of an array; nil when out of range or not an array.
    public subscript(index: Int) -> JSONValue? {
        guard case .array(let elements) = self, elements.indices.contains(index) else { return nil }
        return elements[index]
    }

    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var bool: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var double: Double? {
        if case .number(let d) = self { return d }
        return nil
    }

    /// The number as an Int when it is one exactly (1.0 is, 1.5 is not).
    public var int: Int? {
        if case .number(let d) = self { return Int(exactly: d) }
        return nil
    }

    /// The number as a UInt64 when it is one exactly: token counts.
    public var uint64: UInt64? {
        if case .number(let d) = self { return UInt64(exactly: d) }
        return nil
    }

    /// The elements of an array; nil when the value is not an array.
    public var array: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// The members of an object in document order; nil when the value is not an object.
    public var object: [(key: String, value: JSONValue)]? {
        if case .object(let o) = self { return o }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

/// An object member's key as JSONParser.readObject meets it: the bytes in the document when it
/// has no escapes (compared with a literal without making a String), else the unescaped text.
public struct JSONKey {
    // Visible to inlined code: a vendor chunk's `switch key` compares a few dozen keys per chunk,
    // each compare inlined into the caller's module is a length check and a few bytes.
    @usableFromInline let bytes: UnsafeBufferPointer<UInt8>
    @usableFromInline let unescaped: String?

    init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
        unescaped = nil
    }

    init(text: String) {
        bytes = UnsafeBufferPointer(start: nil, count: 0)
        unescaped = text
    }

    /// The key as a String (an allocation for keys over 15 bytes).
    public var string: String { unescaped ?? String(decoding: bytes, as: UTF8.self) }

    @inlinable
    public static func == (key: JSONKey, literal: StaticString) -> Bool {
        if let unescaped = key.unescaped { return literal.withUTF8Buffer { unescaped.utf8.elementsEqual($0) } }
        // Most comparisons fail on the length; the rest are a few bytes, shorter than a call.
        let count = literal.utf8CodeUnitCount
        guard key.bytes.count == count else { return false }
        return literal.withUTF8Buffer { text in
            for k in 0..<count where key.bytes[k] != text[k] { return false }
            return true
        }
    }

    /// Lets a `switch key` list its cases as literals.
    @inlinable
    public static func ~= (literal: StaticString, key: JSONKey) -> Bool { key == literal }
}

extension JSONValue: Equatable {
    /// Structural equality; objects compare member by member in order.
    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }
}

extension JSONValue {
    /// Compact JSON text: no spaces, keys in their original order, non-ASCII characters written
    /// as they are, integral numbers without a fraction. Parsing it gives back an equal value.
    public var jsonText: String {
        var out: [UInt8] = []
        write(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private func write(to out: inout [UInt8]) {
        switch self {
        case .null: out += "null".utf8
        case .bool(let b): out += (b ? "true" : "false").utf8
        case .number(let d): out += Self.numberText(d).utf8
        case .string(let s): Self.writeString(s, to: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (i, element) in elements.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                element.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (i, member) in members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                Self.writeString(member.key, to: &out)
                out.append(UInt8(ascii: ":"))
                member.value.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Integers that a Double holds exactly print as integers; others in Swift's shortest
    /// round-trip form ("1.5", "1e-07", "1e+300"), which is valid JSON. The parser never makes
    /// an infinity or a NaN.
    public static func numberText(_ d: Double) -> String {
        if d.rounded() == d, abs(d) < 9_007_199_254_740_992 { return String(Int64(d)) }
        return d.description
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// `s` as a JSON string: quotes, backslashes and control characters escaped, the rest
    /// (slashes, non-ASCII) as it is.
    public static func writeString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out += #"\""#.utf8
            case UInt8(ascii: "\\"): out += #"\\"#.utf8
            case 0x0A: out += #"\n"#.utf8
            case 0x0D: out += #"\r"#.utf8
            case 0x09: out += #"\t"#.utf8
            case 0..<0x20: out += #"\u00"#.utf8; out.append(hexDigits[Int(b >> 4)]); out.append(hexDigits[Int(b & 0xF)])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
