// JSON Schema patterns are ECMA-262 regular expressions; Foundation's NSRegularExpression speaks ICU's
// dialect. This rewrites the constructs whose meaning differs so that ICU matches what ECMA-262 (with
// the `u` flag's code point semantics) would: ASCII-only \d \w \b, ECMA's \s, `$` only at the end,
// `.` not matching U+0085, literal `{` and `[`, and the empty classes `[]` and `[^]`.
import Foundation

enum ECMARegex {
    /// Compiles a pattern; throws a message naming the problem when ICU refuses the translation.
    static func compile(_ pattern: String) throws -> CompiledPattern {
        do {
            return CompiledPattern(source: pattern, regex: try NSRegularExpression(pattern: translate(pattern), options: []))
        } catch {
            throw PatternError(message: "\"\(pattern)\" is not a valid regular expression")
        }
    }

    struct PatternError: Error {
        let message: String
    }

    // ECMA-262's \w and \s, spelled out for ICU (whose own are Unicode-wide and lack U+000B, U+FEFF).
    private static let word = "a-zA-Z0-9_"
    private static let space = #"\t\n\x{0B}\f\r \x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}"#
    private static let wordBoundary = "(?:(?<=[\(word)])(?![\(word)])|(?<![\(word)])(?=[\(word)]))"

    /// The ICU pattern equivalent to the ECMA-262 `pattern`.
    static func translate(_ pattern: String) -> String {
        let p = Array(pattern.unicodeScalars)
        var out = ""
        var i = 0
        var inClass = false
        while i < p.count {
            let c = p[i]
            switch c {
            case "\\" where i + 1 < p.count:
                let e = p[i + 1]
                i += 2
                switch e {
                case "d": out += inClass ? "0-9" : "[0-9]"
                case "D": out += "[^0-9]"  // inside a class ICU reads a nested set as a union
                case "w": out += inClass ? word : "[\(word)]"
                case "W": out += "[^\(word)]"
                case "s": out += inClass ? space : "[\(space)]"
                case "S": out += "[^\(space)]"
                case "b": out += inClass ? #"\x{08}"# : wordBoundary
                case "v": out += #"\x{0B}"#  // ICU's \v is a class of vertical spaces
                case "0" where i >= p.count || !("0"..."9").contains(p[i]): out += #"\x{0}"#
                case "B": out += inClass ? "B" : "(?!\(wordBoundary))"
                case "u" where i < p.count && p[i] == "{", "p" where i < p.count && p[i] == "{", "P" where i < p.count && p[i] == "{":
                    // \u{1F600} (the u flag's form) is ICU's \x{1F600}; \p{Letter} is the same in both.
                    // The braces are copied as they are, not read as a quantifier.
                    out += e == "u" ? #"\x"# : "\\" + String(e)
                    while i < p.count {
                        out.unicodeScalars.append(p[i])
                        i += 1
                        if p[i - 1] == "}" { break }
                    }
                default:
                    out.unicodeScalars.append("\\")
                    out.unicodeScalars.append(e)
                }
                continue
            case "[" where !inClass:
                inClass = true
                if i + 1 < p.count, p[i + 1] == "]" {
                    out += "(?!)"  // [] matches nothing
                    inClass = false
                    i += 2
                    continue
                }
                if i + 2 < p.count, p[i + 1] == "^", p[i + 2] == "]" {
                    out += #"[\s\S]"#  // [^] matches anything
                    inClass = false
                    i += 3
                    continue
                }
                out += "["
                if i + 1 < p.count, p[i + 1] == "^" {
                    out += "^"
                    i += 1
                }
            case "]" where inClass:
                inClass = false
                out += "]"
            case "[", "&":
                // Literals in an ECMA class (a "[" outside one is handled above); ICU would start a
                // nested set or a set operation.
                out.unicodeScalars.append("\\")
                out.unicodeScalars.append(c)
            case "$" where !inClass:
                out += #"\z"#  // the end of the input only; ICU's $ also matches before a final newline
            case "." where !inClass:
                out += #"[^\n\r\x{2028}\x{2029}]"#
            case "{" where !inClass:
                if let end = quantifierEnd(p, from: i) {
                    out += String(String.UnicodeScalarView(p[i...end]))
                    i = end + 1
                    continue
                }
                out += #"\{"#
            case "}" where !inClass:
                out += #"\}"#
            default:
                out.unicodeScalars.append(c)
            }
            i += 1
        }
        return out
    }

    /// The index of the `}` closing a quantifier `{n}`, `{n,}` or `{n,m}` that starts at `start`.
    private static func quantifierEnd(_ p: [Unicode.Scalar], from start: Int) -> Int? {
        var i = start + 1
        func digits() -> Bool {
            let from = i
            while i < p.count, ("0"..."9").contains(p[i]) { i += 1 }
            return i > from
        }
        guard digits() else { return nil }
        if i < p.count, p[i] == "," {
            i += 1
            _ = digits()
        }
        return i < p.count && p[i] == "}" ? i : nil
    }
}
