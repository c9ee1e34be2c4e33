// Why a schema cannot be used: not JSON, not a valid draft 2020-12 schema, a `$ref` that leads
// nowhere in the document or outside it, a pattern that is no regular expression, or a limit hit.

/// A schema that JSONSchema refuses to compile. Extract answers INVALID_ARGUMENT with it before any
/// vendor is called, so the message names the place (`schemaPath`) and the rule broken.
public struct SchemaError: Error, Sendable, CustomStringConvertible {
    /// JSON Pointer of the offending location in the schema document, "/properties/age/minimum";
    /// "" is the whole document.
    public var schemaPath: String
    /// What is wrong there: "minimum must be a number, is a string".
    public var message: String

    public init(schemaPath: String, message: String) {
        self.schemaPath = schemaPath
        self.message = message
    }

    /// "schema /properties/age/minimum: minimum must be a number, is a string".
    public var description: String { "schema \(schemaPath.isEmpty ? "/" : schemaPath): \(message)" }
}
