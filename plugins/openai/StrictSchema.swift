// Whether a response schema fits OpenAI's strict Structured Outputs subset, so the plugin can ask
// for `strict: true` (the vendor then guarantees the shape) and fall back to plain json_schema
// (best effort, checked by the gateway) for any schema outside it.
import Foundation

enum StrictSchema {
    /// The keywords strict mode accepts (OpenAI's "supported schemas"); any other keyword anywhere
    /// in the schema (allOf, not, if, oneOf, patternProperties, minLength, uniqueItems, …) means non-strict.
    static let keywords: Set<String> = [
        "type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf",
        "$ref", "$defs", "definitions", "description", "title", "$schema",
        "pattern", "format", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
        "minItems", "maxItems",
    ]
    /// Strict mode's published bounds: object nesting depth and properties over the whole schema.
    static let maxDepth = 10
    static let maxProperties = 5000

    /// True when `schema` (JSONSerialization's objects) can be sent with `strict: true`: an object
    /// root; every object closed (`additionalProperties: false`) with every property required;
    /// only the keywords above; within the bounds.
    static func fits(_ schema: Any) -> Bool {
        guard let root = schema as? [String: Any], root["type"] as? String == "object" else { return false }
        var properties = 0
        return check(root, depth: 0, properties: &properties)
    }

    private static func check(_ node: Any, depth: Int, properties: inout Int) -> Bool {
        guard let schema = node as? [String: Any] else { return false }  // boolean schemas are not accepted
        guard depth <= maxDepth, schema.keys.allSatisfy(keywords.contains) else { return false }
        let types = (schema["type"] as? [String]) ?? (schema["type"] as? String).map { [$0] } ?? []
        if types.contains("object") || schema["properties"] != nil {
            let props = schema["properties"] as? [String: Any] ?? [:]
            properties += props.count
            guard properties <= maxProperties,
                  schema["additionalProperties"] as? Bool == false,
                  Set(schema["required"] as? [String] ?? []) == Set(props.keys) else { return false }
            for child in props.values where !check(child, depth: depth + 1, properties: &properties) { return false }
        }
        if let items = schema["items"], !check(items, depth: depth + 1, properties: &properties) { return false }
        for branch in schema["anyOf"] as? [Any] ?? [] where !check(branch, depth: depth + 1, properties: &properties) { return false }
        for group in ["$defs", "definitions"] {
            for def in (schema[group] as? [String: Any] ?? [:]).values where !check(def, depth: depth + 1, properties: &properties) { return false }
        }
        return true
    }
}
