// JSON request bodies, written straight from the plugins' [String: Any] objects (keys sorted,
// slashes not escaped), with media as base64 written in place of their placeholders. Foundation's
// JSONSerialization costs more than the rest of a streamed call's setup on Linux (its sorted keys
// go through ICU collation, every value through NSNumber bridging) and about 170 ms per MB of
// base64 string; this writer does neither.
import Foundation
import PrismJSON

/// Collects the base64 strings of one body. Put `base64(of:)`'s placeholder where the string
/// belongs in the JSON object, then `serialize` the object.
public struct JSONBody {
    /// Unique per body, so that no text a client wrote can look like a placeholder.
    private let token = "prism-base64-" + UUID().uuidString + "-"
    private var media: [Data] = []

    public init() {}

    /// The placeholder string for `data` as base64 (no line breaks, as every vendor wants).
    public mutating func base64(of data: Data) -> String {
        media.append(data)
        return token + String(media.count - 1)
    }

    /// `object` as compact JSON, keys sorted, slashes not escaped, each placeholder (alone or
    /// ending a string) replaced by its base64. Swift's own values (String, Bool, integers, Double, Float, arrays,
    /// dictionaries, NSNull) are written here; anything else (the NSNumbers of a schema parsed
    /// by JSONSerialization) by JSONSerialization, which knows a boolean NSNumber from a number.
    /// Throws for what JSON cannot hold (an infinite number, a type JSONSerialization refuses).
    public func serialize(_ object: Any) throws -> Data {
        var out: [UInt8] = []
        out.reserveCapacity(1024 + media.reduce(0) { $0 + ($1.count + 2) / 3 * 4 })
        try write(object, to: &out)
        return Data(out)
    }

    private func write(_ value: Any, to out: inout [UInt8]) throws {
        // Strings, objects and arrays first: most values are, and each failed cast costs.
        if let text = value as? String {
            guard let (head, data) = medium(endingIn: text) else { return JSONValue.writeString(text, to: &out) }
            // The text before the placeholder (a data URL's "data:…;base64,"), then the base64
            // in place of the placeholder, inside the string's quotes.
            JSONValue.writeString(String(head), to: &out)
            out.removeLast()
            out += data.base64EncodedData()
            out.append(UInt8(ascii: "\""))
        } else if let object = value as? [String: Any] {
            out.append(UInt8(ascii: "{"))
            for (index, key) in object.keys.sorted().enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.writeString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                try write(object[key]!, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        } else if let array = value as? [Any] {
            out.append(UInt8(ascii: "["))
            for (index, element) in array.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                try write(element, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        } else if type(of: value) is NSNumber.Type {
            // Before the casts below, which would bridge it into a Bool or an Int.
            out += try JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed])
        } else {
            switch value {
            case let flag as Bool: out += (flag ? "true" : "false").utf8
            case let n as Int: out += String(n).utf8
            case let n as Int64: out += String(n).utf8
            case let n as Int32: out += String(n).utf8
            case let n as UInt: out += String(n).utf8
            case let n as UInt64: out += String(n).utf8
            case let n as UInt32: out += String(n).utf8
            case let n as Double: try write(number: n, to: &out)
            case let n as Float: try write(number: Double(n), to: &out)
            case is NSNull: out += "null".utf8
            default:
                out += try JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys, .withoutEscapingSlashes])
            }
        }
    }

    private func write(number: Double, to out: inout [UInt8]) throws {
        guard number.isFinite else { throw CallFailure(.invalidArgument, "a request body holds \(number), which JSON cannot") }
        out += JSONValue.numberText(number).utf8
    }

    /// The text before the placeholder `text` ends with, and its medium; nil without one.
    private func medium(endingIn text: String) -> (Substring, Data)? {
        guard !media.isEmpty else { return nil }
        let digits = text.utf8.reversed().prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }.count
        let head = Substring(text.utf8.dropLast(digits))
        guard digits > 0, head.hasSuffix(token), let index = Int(Substring(text.utf8.suffix(digits))), media.indices.contains(index) else { return nil }
        return (head.dropLast(token.count), media[index])
    }
}
