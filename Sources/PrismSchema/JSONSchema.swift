// The public face of Prism's JSON Schema draft 2020-12 validator: compile a schema once (checked
// against the meta-schema, every `$ref` resolved, every pattern compiled), then validate any number
// of instances, each answer getting every violation with its instance path and keyword.
import PrismJSON

/// A compiled JSON Schema (draft 2020-12). Extract compiles the request's schema before calling a
/// vendor (a SchemaError is the client's INVALID_ARGUMENT) and validates every answer with it.
///
/// Only the schema's own document is used: a `$ref` to another URI is a SchemaError, except the
/// 2020-12 meta-schemas, which are embedded. `format` and the content keywords are annotations (not
/// checked); `pattern` is ECMA-262 translated for ICU (see ECMARegex).
public struct JSONSchema: Sendable {
    private let program: SchemaProgram

    /// Compiles a schema; throws SchemaError when it is not a valid draft 2020-12 schema.
    public init(_ document: JSONValue) throws {
        // The registry's walk comes first: it bounds the nesting the meta-schema check then recurses through.
        var registry = SchemaRegistry()
        try registry.add(document, base: SchemaRegistry.defaultBase, pathPrefix: "")
        if let violation = Self.metaSchema.validate(document).first {
            throw SchemaError(schemaPath: violation.instancePath, message: Self.metaMessage(violation))
        }
        program = try SchemaCompiler.compile(registry, root: SchemaLocation(document: 0, tokens: []))
    }

    /// Compiles a schema from its JSON text; text that is not JSON is a SchemaError too.
    public init(text: String) throws {
        let document: JSONValue
        do {
            document = try JSONValue.parse(text)
        } catch let error as JSONParseError {
            throw SchemaError(schemaPath: "", message: "the schema is not JSON: \(error)")
        }
        try self.init(document)
    }

    private init(program: SchemaProgram) {
        self.program = program
    }

    /// Every violation (empty = valid), in document order: the instance's locations as its text has
    /// them, a location before what it contains. Never fails on the schema (compiling checked it);
    /// safe to call from many threads at once. An instance nested deeper than the evaluation limit
    /// (far beyond any real answer) gets a violation with keyword "depth" instead of a stack overflow.
    public func validate(_ instance: JSONValue) -> [SchemaViolation] {
        SchemaEvaluator.validate(instance, against: program)
    }

    /// The 2020-12 meta-schema, compiled once: every schema is validated against it first.
    static let metaSchema: JSONSchema = {
        do {
            var registry = SchemaRegistry()
            try registry.addMetaSchemas()
            return JSONSchema(program: try SchemaCompiler.compile(registry, root: SchemaLocation(document: 0, tokens: [])))
        } catch {
            // The embedded meta-schemas are fixed text that the tests compile: failing here is a build defect.
            fatalError("the embedded 2020-12 meta-schema does not compile: \(error)")
        }
    }()

    /// A meta-schema violation worded for the schema's author: "minimum must be a number, is a string".
    private static func metaMessage(_ violation: SchemaViolation) -> String {
        let tokens = violation.instancePath.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        guard let last = tokens.last else { return "the schema " + violation.message }
        if tokens.count >= 2, SchemaRegistry.schemaMapKeywords.contains(tokens[tokens.count - 2]) || SchemaRegistry.schemaArrayKeywords.contains(tokens[tokens.count - 2]) {
            return "the schema " + violation.message
        }
        if Int(last) != nil, tokens.count >= 2 { return "\(tokens[tokens.count - 2]) item \(last) \(violation.message)" }
        return "\(last) \(violation.message)"
    }
}
