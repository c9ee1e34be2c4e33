// A compiled schema: every subschema as a node in one array, its keywords as checks whose subschemas
// and `$ref` targets are node indices, resolved once by SchemaCompiler. SchemaEvaluator walks it for
// each instance; nothing here changes after compilation, so one program serves every thread.
import Foundation
import PrismJSON

/// The JSON types a `type` keyword names.
struct JSONTypes: OptionSet, Sendable {
    let rawValue: UInt8
    static let null = JSONTypes(rawValue: 1)
    static let boolean = JSONTypes(rawValue: 2)
    static let object = JSONTypes(rawValue: 4)
    static let array = JSONTypes(rawValue: 8)
    static let number = JSONTypes(rawValue: 16)
    static let string = JSONTypes(rawValue: 32)
    /// A number with no fraction (1.0 is one); `number` includes it.
    static let integer = JSONTypes(rawValue: 64)

    /// In the order messages list them.
    static let names: [(String, JSONTypes)] = [
        ("object", .object), ("array", .array), ("string", .string), ("number", .number),
        ("integer", .integer), ("boolean", .boolean), ("null", .null),
    ]

    init(rawValue: UInt8) { self.rawValue = rawValue }

    init?(name: String) {
        guard let found = Self.names.first(where: { $0.0 == name }) else { return nil }
        self = found.1
    }
}

/// A regular expression of a `pattern` or `patternProperties` key, compiled once (see ECMARegex).
final class CompiledPattern: @unchecked Sendable {
    // NSRegularExpression is immutable after creation and documented as safe to share between threads.
    let source: String
    private let regex: NSRegularExpression

    init(source: String, regex: NSRegularExpression) {
        self.source = source
        self.regex = regex
    }

    /// Whether the pattern matches anywhere in `text` (JSON Schema patterns are not anchored); nil
    /// when matching ran past SchemaLimits.maxPatternMatchTime. A backtracking pattern such as
    /// `^(a+)+$` takes seconds on 30 characters: ICU calls back during a long match (`reportProgress`),
    /// which is where it is stopped.
    func matches(_ text: String) -> Bool? {
        let deadline = DispatchTime.now().uptimeNanoseconds + SchemaLimits.maxPatternMatchTime
        var matched: Bool? = false
        regex.enumerateMatches(in: text, options: [.reportProgress], range: NSRange(location: 0, length: text.utf16.count)) { result, flags, stop in
            if result != nil {
                matched = true
                stop.pointee = true
            } else if !flags.contains(.completed), DispatchTime.now().uptimeNanoseconds > deadline {
                // Only a match still running is cut: a finished one has its answer, however late.
                matched = nil
                stop.pointee = true
            }
        }
        return matched
    }
}

/// One keyword's test. Subschemas are node indices into SchemaProgram.nodes.
enum Check: Sendable {
    case type(JSONTypes)
    case enumeration([JSONValue])
    case const(JSONValue)
    case minimum(Double)
    case exclusiveMinimum(Double)
    case maximum(Double)
    case exclusiveMaximum(Double)
    case multipleOf(Double)
    case minLength(Int)
    case maxLength(Int)
    case pattern(CompiledPattern)
    case minItems(Int)
    case maxItems(Int)
    case uniqueItems
    case minProperties(Int)
    case maxProperties(Int)
    case required([String])
    case dependentRequired([(property: String, required: [String])])
    case ref(Int)
    /// A `$dynamicRef` whose static target carries `$dynamicAnchor: anchor`: at run time the outermost
    /// resource in the dynamic scope with that dynamic anchor wins, `initial` when none has it.
    case dynamicRef(initial: Int, anchor: String)
    case allOf([Int])
    case anyOf([Int])
    case oneOf([Int])
    case not(Int)
    case conditional(if: Int, then: Int?, else: Int?)
    case dependentSchemas([(property: String, schema: Int)])
    case properties([String: Int])
    case patternProperties([(pattern: CompiledPattern, schema: Int)])
    /// Applies to the members that the adjacent `properties` and `patternProperties` do not name.
    case additionalProperties(Int, named: Set<String>, patterns: [CompiledPattern])
    case propertyNames(Int)
    case prefixItems([Int])
    /// Applies to the elements after the adjacent `prefixItems`.
    case items(Int, after: Int)
    case contains(Int, min: Int, max: Int?)
    case unevaluatedProperties(Int)
    case unevaluatedItems(Int)
}

/// A keyword of a node: its check and the JSON Pointer of the keyword in the schema.
struct KeywordCheck: Sendable {
    let keyword: String
    let schemaPath: String
    let check: Check
}

/// What a `false` schema refuses, for its message: a member, an element, or any value.
enum Refusal: Sendable {
    case property, item, value
}

/// One subschema: a boolean schema or an object's keywords, in the order they are evaluated (the
/// unevaluated* keywords last, since they depend on what the others evaluated).
struct SchemaNode: Sendable {
    /// The JSON Pointer of the subschema in its document (a meta-schema's is prefixed by its URI and "#").
    var location: String
    /// The schema resource (`$id` scope) the subschema belongs to: entered into the dynamic scope.
    var resource: Int
    /// Set for a boolean schema.
    var constant: Bool?
    /// For a `false` schema: the keyword reported, and what kind of value it refuses.
    var refusedBy: String = "false"
    var refusal: Refusal = .value
    var checks: [KeywordCheck] = []
}

/// A schema resource: the `$dynamicAnchor`s it declares, for `$dynamicRef` resolution.
struct SchemaResource: Sendable {
    let uri: String
    var dynamicAnchors: [String: Int] = [:]
}

/// The compiled schema.
struct SchemaProgram: Sendable {
    var nodes: [SchemaNode] = []
    var resources: [SchemaResource] = []
    var root = 0
    /// Whether any unevaluatedProperties/unevaluatedItems exists: only then are annotations collected.
    var collectsAnnotations = false
}
