// A strict RFC 8259 JSON parser from UTF-8 bytes: walked in order by a caller that picks members
// by their key bytes and skips the rest, or built into a JSONValue. One pass, no Foundation,
// strings without escapes decoded straight from the input. Invalid input is refused with the byte
// offset of the problem; nesting is limited so that a hostile document cannot exhaust the stack.
import Foundation

/// Why a document is not JSON, and where: `offset` is the byte at which the parser gave up.
public struct JSONParseError: Error, Equatable, CustomStringConvertible {
    public var offset: Int
    public var reason: String

    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

/// A strict reader of one JSON document that walks it in order without building it: the caller
/// picks what it wants (`readObject` hands over each member's key as bytes, comparable with a
/// literal) and everything else is skipped, checked as strictly as JSONValue.parse checks it.
/// The hot path of a streamed answer uses it: a vendor chunk's dozen members cost no allocation.
///
/// Every `read…` and `skipValue` consumes exactly one value; a member or element the caller's
/// closure leaves unread is skipped.
public struct JSONParser {
    /// Arrays and objects nested deeper than this are refused. The parser recurses once per
    /// level; vendor chunks nest fewer than 10 deep, and 512 stays far from any thread's stack limit.
    static let maxDepth = 512

    /// What the next value is, from its first byte; `.invalid` when no value starts there.
    public enum Kind: Sendable { case object, array, string, number, bool, null, invalid }

    private let b: UnsafeBufferPointer<UInt8>
    private var i = 0
    private var depth = 0
    /// Reused for strings with escapes, the only ones that need a copy before decoding.
    private var scratch: [UInt8] = []

    init(_ bytes: UnsafeRawBufferPointer) {
        b = bytes.assumingMemoryBound(to: UInt8.self)
    }

    /// Reads the document in `bytes` with `body`, which sees the parser on its one top-level
    /// value; throws JSONParseError for anything that is not exactly one valid document.
    @discardableResult
    public static func read<T>(_ bytes: UnsafeRawBufferPointer, _ body: (inout JSONParser) throws -> T) throws -> T {
        var parser = JSONParser(bytes)
        parser.skipSpace()
        let start = parser.i
        let result = try body(&parser)
        if parser.i == start { try parser.skipValue() }
        parser.skipSpace()
        guard parser.i == parser.b.count else { throw parser.fail(at: parser.i, "\(parser.describe(parser.i)) after the end of the document") }
        return result
    }

    /// Reads the document in `bytes` with `body`.
    @discardableResult
    public static func read<T>(_ bytes: [UInt8], _ body: (inout JSONParser) throws -> T) throws -> T {
        try bytes.withUnsafeBytes { try read($0, body) }
    }

    public var nextKind: Kind {
        guard i < b.count else { return .invalid }
        switch b[i] {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
        case UInt8(ascii: "n"): return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        default: return .invalid
        }
    }

    /// The next value, built.
    public mutating func readValue() throws -> JSONValue { try value() }

    /// The next value if it is a string; nil after skipping a value of another kind.
    public mutating func readString() throws -> String? {
        guard nextKind == .string else {
            try skipValue()
            return nil
        }
        return try string()
    }

    /// The source text of the next value if it is a number (checked as `readValue` checks it),
    /// e.g. "18446744073709551615": for readers that need integers beyond 2^53 exactly; nil
    /// after skipping a value of another kind.
    public mutating func readNumberText() throws -> String? {
        guard nextKind == .number else {
            try skipValue()
            return nil
        }
        let start = i
        _ = try number()
        return String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
    }

    /// Passes each member of the next value, an object, to `member` in document order (a
    /// repeated key comes twice); returns false after skipping a value that is not an object.
    /// The key is valid only during the call.
    @discardableResult
    public mutating func readObject(_ member: (JSONKey, inout JSONParser) throws -> Void) throws -> Bool {
        guard nextKind == .object else {
            try skipValue()
            return false
        }
        try enter()
        defer { depth -= 1 }
        i += 1  // {
        skipSpace()
        if i < b.count && b[i] == UInt8(ascii: "}") {
            i += 1
            return true
        }
        while true {
            skipSpace()
            guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail(at: i, "\(describe(i)), expected a string key") }
            let (content, escaped) = try scanString()
            let key = escaped ? JSONKey(text: text(content, escaped: true)) : JSONKey(bytes: UnsafeBufferPointer(rebasing: b[content]))
            skipSpace()
            guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail(at: i, "\(describe(i)), expected ':' after a key") }
            i += 1
            skipSpace()
            let start = i
            try member(key, &self)
            if i == start { try skipValue() }
            skipSpace()
            guard i < b.count else { throw fail(at: i, "unexpected end of input in an object") }
            switch b[i] {
            case UInt8(ascii: ","): i += 1
            case UInt8(ascii: "}"): i += 1; return true
            default: throw fail(at: i, "\(describe(i)), expected ',' or '}' in an object")
            }
        }
    }

    /// Passes the parser to `element` once per element of the next value, an array; returns
    /// false after skipping a value that is not an array.
    @discardableResult
    public mutating func readArray(_ element: (inout JSONParser) throws -> Void) throws -> Bool {
        guard nextKind == .array else {
            try skipValue()
            return false
        }
        try enter()
        defer { depth -= 1 }
        i += 1  // [
        skipSpace()
        if i < b.count && b[i] == UInt8(ascii: "]") {
            i += 1
            return true
        }
        while true {
            skipSpace()
            let start = i
            try element(&self)
            if i == start { try skipValue() }
            skipSpace()
            guard i < b.count else { throw fail(at: i, "unexpected end of input in an array") }
            switch b[i] {
            case UInt8(ascii: ","): i += 1
            case UInt8(ascii: "]"): i += 1; return true
            default: throw fail(at: i, "\(describe(i)), expected ',' or ']' in an array")
            }
        }
    }

    /// Checks the next value and moves past it without building anything.
    public mutating func skipValue() throws {
        guard i < b.count else { throw fail(at: i, "unexpected end of input, expected a value") }
        switch b[i] {
        case UInt8(ascii: "{"): try readObject { _, _ in }
        case UInt8(ascii: "["): try readArray { _ in }
        case UInt8(ascii: "\""): _ = try scanString()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): _ = try number()
        default: throw fail(at: i, "\(describe(i)), expected a value")
        }
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
        switch nextKind {
        case .object:
            // Room for a vendor chunk's objects at once: growing 1, 2, 4, 8 cost more than the parse.
            var members: [(key: String, value: JSONValue)] = []
            members.reserveCapacity(8)
            try readObject { key, p in members.append((key.string, try p.value())) }
            return .object(members)
        case .array:
            var elements: [JSONValue] = []
            try readArray { elements.append(try $0.value()) }
            return .array(elements)
        case .string: return .string(try string())
        case .bool:
            if b[i] == UInt8(ascii: "t") { try literal("true"); return .bool(true) }
            try literal("false"); return .bool(false)
        case .null: try literal("null"); return .null
        case .number: return .number(try number())
        case .invalid:
            guard i < b.count else { throw fail(at: i, "unexpected end of input, expected a value") }
            throw fail(at: i, "\(describe(i)), expected a value")
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

    /// Checks the string at `i` (its opening quote) and moves past it: its content's range and
    /// whether it holds escapes. Every error a string can have is found here, so a string that
    /// is only skipped is held to the same rules as one that is read.
    private mutating func scanString() throws -> (content: Range<Int>, escaped: Bool) {
        let open = i
        var j = i + 1
        var ascii = true, escaped = false
        while j < b.count {
            // The hot loops: printable ASCII, which is most of every string, needs no other test;
            // eight bytes at a time while a whole word is such, then byte by byte.
            while j + 8 <= b.count, Self.isPlain(UnsafeRawPointer(b.baseAddress!).loadUnaligned(fromByteOffset: j, as: UInt64.self)) { j += 8 }
            while j < b.count, b[j] >= 0x20, b[j] < 0x80, b[j] != UInt8(ascii: "\""), b[j] != UInt8(ascii: "\\") { j += 1 }
            guard j < b.count else { break }
            let c = b[j]
            if c == UInt8(ascii: "\"") {
                i = j + 1
                if !ascii && !Self.isValidUTF8(UnsafeBufferPointer(rebasing: b[(open + 1)..<j])) {
                    throw fail(at: open, "a string that is not valid UTF-8")
                }
                return ((open + 1)..<j, escaped)
            }
            if c == UInt8(ascii: "\\") {
                escaped = true
                j += 1
                guard j < b.count else { break }
                switch b[j] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                     UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"): break
                case UInt8(ascii: "u"): _ = try hex4(at: j + 1); j += 4
                default: throw fail(at: j - 1, "invalid escape '\\\(Character(Unicode.Scalar(b[j])))' in a string")
                }
            } else if c < 0x20 {
                throw fail(at: j, "control character 0x\(String(c, radix: 16)) in a string (must be escaped)")
            } else if c >= 0x80 {
                ascii = false
            }
            j += 1
        }
        throw fail(at: open, "unterminated string")
    }

    /// Whether none of the eight bytes of `word` is a quote, a backslash, a control character or
    /// non-ASCII. "Has a zero byte" is `(x - 0x01…) & ~x & 0x80…`, exact as to whether any byte
    /// is zero; applied to the word XOR a repeated byte it finds that byte, and `(x - 0x20…) & ~x`
    /// finds a byte below 0x20 the same way. The word's own high bits are the non-ASCII bytes.
    @inline(__always)
    static func isPlain(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let quote = word ^ (ones &* 0x22), backslash = word ^ (ones &* 0x5C)
        let found = ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | ((word &- ones &* 0x20) & ~word) | word
        return found & (ones &* 0x80) == 0
    }

    /// The string at `i`.
    private mutating func string() throws -> String {
        let (content, escaped) = try scanString()
        return text(content, escaped: escaped)
    }

    /// A scanned string's text. Most strings have no escapes: those are decoded from the input
    /// in place; the rest are unescaped into `scratch` first.
    private mutating func text(_ content: Range<Int>, escaped: Bool) -> String {
        guard escaped else { return String(decoding: UnsafeBufferPointer(rebasing: b[content]), as: UTF8.self) }
        scratch.removeAll(keepingCapacity: true)
        var j = content.lowerBound
        while j < content.upperBound {
            let c = b[j]
            guard c == UInt8(ascii: "\\") else {
                scratch.append(c)
                j += 1
                continue
            }
            j += 1
            switch b[j] {
            case UInt8(ascii: "b"): scratch.append(0x08)
            case UInt8(ascii: "f"): scratch.append(0x0C)
            case UInt8(ascii: "n"): scratch.append(0x0A)
            case UInt8(ascii: "r"): scratch.append(0x0D)
            case UInt8(ascii: "t"): scratch.append(0x09)
            case UInt8(ascii: "u"): unicodeEscape(&j)
            default: scratch.append(b[j])  // " \\ /
            }
            j += 1
        }
        return String(decoding: scratch, as: UTF8.self)
    }

    /// `\uXXXX` of a scanned string with `j` at the `u`; leaves `j` on its last hex digit. A
    /// surrogate pair written as two escapes makes one character. A lone surrogate is legal JSON
    /// but no character: it becomes U+FFFD, as in WHATWG decoders, rather than failing a whole stream.
    private mutating func unicodeEscape(_ j: inout Int) {
        // The scan has checked every escape of the string: the hex digits are there.
        var scalar = try! hex4(at: j + 1)
        j += 4
        if (0xD800..<0xDC00).contains(scalar) {
            if b[j + 1] == UInt8(ascii: "\\"), b[j + 2] == UInt8(ascii: "u") {
                let low = try! hex4(at: j + 3)
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

    /// Whether `p` is well-formed UTF-8 (Unicode's table 3-7: no overlong forms, no surrogates,
    /// nothing above U+10FFFF), exactly what String(validating:) accepts, without making a String.
    static func isValidUTF8(_ p: UnsafeBufferPointer<UInt8>) -> Bool {
        var k = 0
        while k < p.count {
            let c = p[k]
            if c < 0x80 {
                k += 1
                continue
            }
            var count = 3, low: UInt8 = 0x80, high: UInt8 = 0xBF  // continuation bytes, and the first one's range
            switch c {
            case 0xC2...0xDF: count = 1
            case 0xE0: count = 2; low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: count = 2
            case 0xED: count = 2; high = 0x9F
            case 0xF0: low = 0x90
            case 0xF1...0xF3: break
            case 0xF4: high = 0x8F
            default: return false
            }
            guard k + count < p.count, p[k + 1] >= low, p[k + 1] <= high else { return false }
            for m in (k + 2)..<(k + 1 + count) where p[m] & 0xC0 != 0x80 { return false }
            k += count + 1
        }
        return true
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
