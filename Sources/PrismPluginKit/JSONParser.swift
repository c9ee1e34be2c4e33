// A strict RFC 8259 JSON parser from UTF-8 bytes into JSONValue: one pass, no Foundation, strings
// without escapes decoded straight from the input. Invalid input is refused with the byte offset
// of the problem; nesting is limited so that a hostile document cannot exhaust the stack.
import Foundation

/// Why a document is not JSON, and where: `offset` is the byte at which the parser gave up.
public struct JSONParseError: Error, Equatable, CustomStringConvertible {
    public var offset: Int
    public var reason: String

    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

/// Parses one document. Use JSONValue.parse; this type holds the cursor while it runs.
struct JSONParser {
    /// Arrays and objects nested deeper than this are refused. The parser recurses once per
    /// level; vendor chunks nest fewer than 10 deep, and 512 stays far from any thread's stack limit.
    static let maxDepth = 512

    private let b: UnsafeBufferPointer<UInt8>
    private var i = 0
    private var depth = 0
    /// Reused for strings with escapes, the only ones that need a copy before decoding.
    private var scratch: [UInt8] = []

    init(_ bytes: UnsafeRawBufferPointer) {
        b = bytes.assumingMemoryBound(to: UInt8.self)
    }

    mutating func parseDocument() throws -> JSONValue {
        skipSpace()
        let v = try value()
        skipSpace()
        guard i == b.count else { throw fail(at: i, "\(describe(i)) after the end of the document") }
        return v
    }

    private func fail(at offset: Int, _ reason: String) -> JSONParseError {
        JSONParseError(offset: offset, reason: reason)
    }

    /// The byte at `offset` for an error message.
    private func describe(_ offset: Int) -> String {
        guard offset < b.count else { return "end of input" }
        let c = b[offset]
        return c >= 0x21 && c < 0x7F ? "unexpected '\(Character(Unicode.Scalar(c)))'" : "unexpected byte 0x\(String(c, radix: 16))"
    }

    private mutating func skipSpace() {
        while i < b.count {
            switch b[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    private mutating func value() throws -> JSONValue {
        guard i < b.count else { throw fail(at: i, "unexpected end of input, expected a value") }
        switch b[i] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw fail(at: i, "\(describe(i)), expected a value")
        }
    }

    private mutating func literal(_ word: StaticString) throws {
        let start = i
        for expected in UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount) {
            guard i < b.count, b[i] == expected else { throw fail(at: start, "invalid literal, expected '\(word)'") }
            i += 1
        }
    }

    private mutating func enter() throws {
        depth += 1
        if depth > Self.maxDepth { throw fail(at: i, "nested deeper than \(Self.maxDepth) levels") }
    }

    private mutating func object() throws -> JSONValue {
        try enter()
        defer { depth -= 1 }
        i += 1  // {
        var members: [(key: String, value: JSONValue)] = []
        skipSpace()
        if i < b.count && b[i] == UInt8(ascii: "}") {
            i += 1
            return .object(members)
        }
        // Room for a vendor chunk's objects at once: growing 1, 2, 4, 8 cost more than the parse.
        members.reserveCapacity(8)
        while true {
            skipSpace()
            guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail(at: i, "\(describe(i)), expected a string key") }
            let key = try string()
            skipSpace()
            guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail(at: i, "\(describe(i)), expected ':' after a key") }
            i += 1
            skipSpace()
            members.append((key, try value()))
            skipSpace()
            guard i < b.count else { throw fail(at: i, "unexpected end of input in an object") }
            switch b[i] {
            case UInt8(ascii: ","): i += 1
            case UInt8(ascii: "}"): i += 1; return .object(members)
            default: throw fail(at: i, "\(describe(i)), expected ',' or '}' in an object")
            }
        }
    }

    private mutating func array() throws -> JSONValue {
        try enter()
        defer { depth -= 1 }
        i += 1  // [
        var elements: [JSONValue] = []
        skipSpace()
        if i < b.count && b[i] == UInt8(ascii: "]") {
            i += 1
            return .array(elements)
        }
        while true {
            skipSpace()
            elements.append(try value())
            skipSpace()
            guard i < b.count else { throw fail(at: i, "unexpected end of input in an array") }
            switch b[i] {
            case UInt8(ascii: ","): i += 1
            case UInt8(ascii: "]"): i += 1; return .array(elements)
            default: throw fail(at: i, "\(describe(i)), expected ',' or ']' in an array")
            }
        }
    }

    /// A string at `i` (its opening quote). Most strings have no escapes: those are decoded from
    /// the input in place; the rest are unescaped into `scratch` first.
    private mutating func string() throws -> String {
        let open = i
        var j = i + 1
        var ascii = true
        while j < b.count {
            let c = b[j]
            if c == UInt8(ascii: "\"") {
                let content = UnsafeBufferPointer(rebasing: b[(open + 1)..<j])
                i = j + 1
                return ascii ? String(decoding: content, as: UTF8.self) : try validUTF8(content, at: open)
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw fail(at: j, "control character 0x\(String(c, radix: 16)) in a string (must be escaped)") }
            if c >= 0x80 { ascii = false }
            j += 1
        }
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: b[(open + 1)..<j])
        while j < b.count {
            let c = b[j]
            switch c {
            case UInt8(ascii: "\""):
                i = j + 1
                return try scratch.withUnsafeBufferPointer { try validUTF8($0, at: open) }
            case UInt8(ascii: "\\"):
                j += 1
                guard j < b.count else { throw fail(at: open, "unterminated string") }
                switch b[j] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scratch.append(b[j])
                case UInt8(ascii: "b"): scratch.append(0x08)
                case UInt8(ascii: "f"): scratch.append(0x0C)
                case UInt8(ascii: "n"): scratch.append(0x0A)
                case UInt8(ascii: "r"): scratch.append(0x0D)
                case UInt8(ascii: "t"): scratch.append(0x09)
                case UInt8(ascii: "u"): try unicodeEscape(&j)
                default: throw fail(at: j - 1, "invalid escape '\\\(Character(Unicode.Scalar(b[j])))' in a string")
                }
                j += 1
            case 0..<0x20:
                throw fail(at: j, "control character 0x\(String(c, radix: 16)) in a string (must be escaped)")
            default:
                scratch.append(c)
                j += 1
            }
        }
        throw fail(at: open, "unterminated string")
    }

    /// `\uXXXX` with `j` at the `u`; leaves `j` on its last hex digit. A surrogate pair written as
    /// two escapes makes one character. A lone surrogate is legal JSON but no character: it
    /// becomes U+FFFD, as in WHATWG decoders, rather than failing a whole stream.
    private mutating func unicodeEscape(_ j: inout Int) throws {
        var scalar = try hex4(at: j + 1)
        j += 4
        if (0xD800..<0xDC00).contains(scalar) {
            if j + 2 < b.count, b[j + 1] == UInt8(ascii: "\\"), b[j + 2] == UInt8(ascii: "u") {
                let low = try hex4(at: j + 3)
                if (0xDC00..<0xE000).contains(low) {
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    j += 6
                } else {
                    scalar = 0xFFFD
                }
            } else {
                scalar = 0xFFFD
            }
        } else if (0xDC00..<0xE000).contains(scalar) {
            scalar = 0xFFFD
        }
        scratch.append(contentsOf: UTF8.encode(Unicode.Scalar(scalar)!)!)
    }

    private func hex4(at offset: Int) throws -> UInt32 {
        guard offset + 4 <= b.count else { throw fail(at: offset - 2, "unterminated \\u escape") }
        var v: UInt32 = 0
        for k in offset..<(offset + 4) {
            let c = b[k]
            let digit: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = c - UInt8(ascii: "A") + 10
            default: throw fail(at: offset - 2, "invalid \\u escape (needs 4 hex digits)")
            }
            v = v << 4 | UInt32(digit)
        }
        return v
    }

    private func validUTF8(_ bytes: UnsafeBufferPointer<UInt8>, at offset: Int) throws -> String {
        guard let s = String(validating: bytes, as: UTF8.self) else { throw fail(at: offset, "a string that is not valid UTF-8") }
        return s
    }

    /// A number per RFC 8259's grammar. Integers of up to 15 digits (every token count and
    /// index) are computed directly; the rest go through the C library's correctly rounded strtod.
    private mutating func number() throws -> Double {
        let start = i
        var j = i
        let negative = b[j] == UInt8(ascii: "-")
        if negative { j += 1 }
        func isDigit(_ k: Int) -> Bool { k < b.count && b[k] >= UInt8(ascii: "0") && b[k] <= UInt8(ascii: "9") }
        guard isDigit(j) else { throw fail(at: j, "\(describe(j)), expected a digit in a number") }
        if b[j] == UInt8(ascii: "0") {
            j += 1
            if isDigit(j) { throw fail(at: start, "a number with a leading zero") }
        } else {
            while isDigit(j) { j += 1 }
        }
        var integral = true
        if j < b.count && b[j] == UInt8(ascii: ".") {
            integral = false
            j += 1
            guard isDigit(j) else { throw fail(at: j, "\(describe(j)), expected a digit after '.'") }
            while isDigit(j) { j += 1 }
        }
        if j < b.count && (b[j] == UInt8(ascii: "e") || b[j] == UInt8(ascii: "E")) {
            integral = false
            j += 1
            if j < b.count && (b[j] == UInt8(ascii: "+") || b[j] == UInt8(ascii: "-")) { j += 1 }
            guard isDigit(j) else { throw fail(at: j, "\(describe(j)), expected a digit in an exponent") }
            while isDigit(j) { j += 1 }
        }
        i = j
        let digitsStart = negative ? start + 1 : start
        if integral && j - digitsStart <= 15 {
            var v: Int64 = 0
            for k in digitsStart..<j { v = v * 10 + Int64(b[k] - UInt8(ascii: "0")) }
            return negative ? -Double(v) : Double(v)
        }
        guard let d = Double(String(decoding: UnsafeBufferPointer(rebasing: b[start..<j]), as: UTF8.self)), d.isFinite else {
            throw fail(at: start, "a number too large for a Double")
        }
        return d
    }
}
