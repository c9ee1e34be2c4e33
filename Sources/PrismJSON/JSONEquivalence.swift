// Equality of JSON values as JSON means it, which `==` (structural, member order included) does not:
// JSON Schema's `const`, `enum` and `uniqueItems` compare numbers by value and objects as sets of
// members. `JSONEquivalent` wraps a value so that a Set can find repeats in one pass.

extension JSONValue {
    /// Whether the two values are the same JSON: numbers by value (1 and 1.0 are equal, so are 0
    /// and -0), strings by their Unicode code points (no normalization), arrays element by element,
    /// objects by their members whatever their order. A key that repeats in an object counts once,
    /// with its last value, as the subscript reads it.
    public func isEquivalent(to other: JSONValue) -> Bool {
        switch (self, other) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.string(let x), .string(let y)): return x.unicodeScalars.elementsEqual(y.unicodeScalars)
        case (.array(let x), .array(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.isEquivalent(to: $1) }
        case (.object, .object):
            let x = uniqueMembers, y = other.uniqueMembers
            guard x.count == y.count else { return false }
            for (key, value) in x {
                guard let theirs = y[key], value.isEquivalent(to: theirs) else { return false }
            }
            return true
        default: return false
        }
    }

    /// An object's members by key, the last one winning where a key repeats; empty for a non-object.
    private var uniqueMembers: [String: JSONValue] {
        guard case .object(let members) = self else { return [:] }
        return Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
    }

    /// Feeds `hasher` so that equivalent values hash alike: object members combine independently of
    /// their order, and -0 hashes as 0 (Double's own hash already does).
    fileprivate func hashEquivalence(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let b): hasher.combine(1); hasher.combine(b)
        case .number(let d): hasher.combine(2); hasher.combine(d)
        case .string(let s):
            hasher.combine(3)
            for scalar in s.unicodeScalars { hasher.combine(scalar.value) }
        case .array(let elements):
            hasher.combine(4); hasher.combine(elements.count)
            for element in elements { element.hashEquivalence(into: &hasher) }
        case .object:
            // Each member hashed alone, the results summed: the sum does not depend on the order.
            let members = uniqueMembers
            var sum = 0
            for (key, value) in members {
                var member = Hasher()
                member.combine(key)
                value.hashEquivalence(into: &member)
                sum &+= member.finalize()
            }
            hasher.combine(5); hasher.combine(members.count); hasher.combine(sum)
        }
    }
}

/// A JSON value hashed and compared by `isEquivalent(to:)`: `Set<JSONEquivalent>` finds the
/// repeated elements of an array in one pass.
public struct JSONEquivalent: Hashable, Sendable {
    public let value: JSONValue

    public init(_ value: JSONValue) { self.value = value }

    public static func == (a: JSONEquivalent, b: JSONEquivalent) -> Bool { a.value.isEquivalent(to: b.value) }

    public func hash(into hasher: inout Hasher) { value.hashEquivalence(into: &hasher) }
}
