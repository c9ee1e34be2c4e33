// What JSONSchema.validate reports: one SchemaViolation per failed check, naming where in the
// instance it failed (a JSON Pointer) and which keyword of which schema location refused it.

/// One reason an instance is not valid against a schema. Extract feeds these back to the model on a
/// repair attempt and names them in its final error, so the message is for people: it says what the
/// value must be and what it is.
public struct SchemaViolation: Sendable, Equatable, CustomStringConvertible {
    /// JSON Pointer (RFC 6901) of the instance location, "/line_items/0/amount"; "" is the root.
    public var instancePath: String
    /// The keyword that failed: "required", "type", "minimum", ...
    public var keyword: String
    /// JSON Pointer of the failing keyword in the schema document,
    /// "/properties/line_items/items/properties/amount/minimum". A keyword of an embedded meta-schema
    /// is given as its absolute URI with the pointer as fragment.
    public var schemaPath: String
    /// What is wrong, for a person: "must be >= 0, is -3".
    public var message: String

    public init(instancePath: String, keyword: String, schemaPath: String, message: String) {
        self.instancePath = instancePath
        self.keyword = keyword
        self.schemaPath = schemaPath
        self.message = message
    }

    /// "/line_items/0/amount: must be >= 0, is -3 (minimum)"; the root is written "/".
    public var description: String { "\(instancePath.isEmpty ? "/" : instancePath): \(message) (\(keyword))" }
}
