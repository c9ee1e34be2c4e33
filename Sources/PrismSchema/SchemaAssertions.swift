// The assertion keywords of draft 2020-12: those with no subschema (type, enum, const, the numeric,
// string, array and object limits, required), each with the message a person reads when it fails
// ("must be >= 0, is -3"). A keyword that does not apply to the instance's type passes.
import Foundation
import PrismJSON

extension SchemaEvaluator {
    /// Checks one assertion keyword (not an applicator) against `instance`, reporting its violations.
    /// Kept apart from the recursive applicators so that their stack frames stay small.
    mutating func checkAssertion(_ keywordCheck: KeywordCheck, _ instance: JSONValue) -> Bool {
        let keyword = keywordCheck.keyword, path = keywordCheck.schemaPath
        func fail(_ message: String) -> Bool {
            report(keyword, path, message)
            return false
        }
        switch keywordCheck.check {
        case .type(let types):
            return Self.matches(instance, types) || fail("must be \(Self.describe(types)), is \(describeType(instance))")
        case .enumeration(let values):
            if values.contains(where: { $0.isEquivalent(to: instance) }) { return true }
            let listed = values.prefix(10).map(Self.short).joined(separator: ", ") + (values.count > 10 ? ", …" : "")
            return fail(values.count == 1 ? "must be \(listed), is \(Self.short(instance))" : "must be one of \(listed); is \(Self.short(instance))")
        case .const(let value):
            return value.isEquivalent(to: instance) || fail("must be \(Self.short(value)), is \(Self.short(instance))")
        case .minimum(let m):
            guard let d = instance.double else { return true }
            return d >= m || fail("must be >= \(Self.text(m)), is \(Self.text(d))")
        case .exclusiveMinimum(let m):
            guard let d = instance.double else { return true }
            return d > m || fail("must be > \(Self.text(m)), is \(Self.text(d))")
        case .maximum(let m):
            guard let d = instance.double else { return true }
            return d <= m || fail("must be <= \(Self.text(m)), is \(Self.text(d))")
        case .exclusiveMaximum(let m):
            guard let d = instance.double else { return true }
            return d < m || fail("must be < \(Self.text(m)), is \(Self.text(d))")
        case .multipleOf(let m):
            guard let d = instance.double else { return true }
            return Self.isMultiple(d, of: m) || fail("must be a multiple of \(Self.text(m)), is \(Self.text(d))")
        case .minLength(let n):
            guard let s = instance.string else { return true }
            let length = s.unicodeScalars.count
            return length >= n || fail("must be at least \(Self.count(n, "character")) long, is \(length)")
        case .maxLength(let n):
            guard let s = instance.string else { return true }
            let length = s.unicodeScalars.count
            return length <= n || fail("must be at most \(Self.count(n, "character")) long, is \(length)")
        case .pattern(let pattern):
            guard let s = instance.string else { return true }
            guard let matched = pattern.matches(s) else { return fail(Self.timeout(pattern, s)) }
            return matched || fail("must match the pattern \(Self.short(.string(pattern.source))), is \(Self.short(instance))")
        case .minItems(let n):
            guard let elements = instance.array else { return true }
            return elements.count >= n || fail("must have at least \(Self.count(n, "item")), has \(elements.count)")
        case .maxItems(let n):
            guard let elements = instance.array else { return true }
            return elements.count <= n || fail("must have at most \(Self.count(n, "item")), has \(elements.count)")
        case .uniqueItems:
            guard let elements = instance.array else { return true }
            var seen: [JSONEquivalent: Int] = [:]
            for (i, element) in elements.enumerated() {
                if let first = seen.updateValue(i, forKey: JSONEquivalent(element)) {
                    return fail("must not contain duplicates: items \(first) and \(i) are equal")
                }
            }
            return true
        case .minProperties(let n):
            guard let members = instance.object else { return true }
            return members.count >= n || fail("must have at least \(Self.count(n, "property")), has \(members.count)")
        case .maxProperties(let n):
            guard let members = instance.object else { return true }
            return members.count <= n || fail("must have at most \(Self.count(n, "property")), has \(members.count)")
        case .required(let names):
            guard instance.object != nil else { return true }
            var valid = true
            for name in names where instance[name] == nil { valid = fail("must have the property \"\(name)\"") }
            return valid
        case .dependentRequired(let dependencies):
            guard instance.object != nil else { return true }
            var valid = true
            for (property, names) in dependencies where instance[property] != nil {
                for name in names where instance[name] == nil { valid = fail("must have the property \"\(name)\" when \"\(property)\" is present") }
            }
            return valid
        default:
            preconditionFailure("\(keyword) is an applicator")
        }
    }

    static func matches(_ value: JSONValue, _ types: JSONTypes) -> Bool {
        switch value {
        case .null: return types.contains(.null)
        case .bool: return types.contains(.boolean)
        case .object: return types.contains(.object)
        case .array: return types.contains(.array)
        case .string: return types.contains(.string)
        case .number(let d): return types.contains(.number) || (types.contains(.integer) && d.rounded() == d)
        }
    }

    /// "a string", "an object or null", "an integer, a string or null".
    static func describe(_ types: JSONTypes) -> String {
        let names = JSONTypes.names.filter { types.contains($0.1) }.map { name, _ -> String in
            switch name {
            case "null": return "null"
            case "object", "array", "integer": return "an " + name
            default: return "a " + name
            }
        }
        guard names.count > 1 else { return names.first ?? "nothing" }
        return names.dropLast().joined(separator: ", ") + " or " + names.last!
    }

    /// Whether `d` is an integer multiple of `m`. Decimal fractions are not exact in binary (0.3 / 0.1
    /// is 2.9999999999999996), so a quotient within a few units in the last place of an integer counts;
    /// an infinite quotient (1e308 / 0.123) does not.
    static func isMultiple(_ d: Double, of m: Double) -> Bool {
        if d.truncatingRemainder(dividingBy: m) == 0 { return true }
        let q = d / m
        guard q.isFinite else { return false }
        let r = q.rounded()
        return abs(q - r) <= 4 * r.ulp
    }

    /// The message for a pattern match stopped at SchemaLimits.maxPatternMatchTime.
    static func timeout(_ pattern: CompiledPattern, _ text: String) -> String {
        "matching \(short(.string(text))) against the pattern \(short(.string(pattern.source))) took longer than \(SchemaLimits.maxPatternMatchTime / 1_000_000) ms: not validated"
    }

    /// A number as JSON writes it (3, not 3.0).
    static func text(_ d: Double) -> String { JSONValue.number(d).jsonText }

    /// A value's JSON text for a message, cut at 60 characters.
    static func short(_ value: JSONValue) -> String {
        let text = value.jsonText
        return text.count <= 60 ? text : String(text.prefix(57)) + "…"
    }

    /// "1 item", "3 items", "1 property".
    static func count(_ n: Int, _ noun: String) -> String {
        guard n != 1 else { return "1 \(noun)" }
        return "\(n) " + (noun.hasSuffix("y") ? noun.dropLast() + "ies" : noun + "s")
    }
}
