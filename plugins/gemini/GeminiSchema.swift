// Converts the JSON Schema a client gives (response_schema_json) into the OpenAPI 3.0 subset that
// Gemini's generationConfig.responseSchema takes, which rejects any keyword it does not know.
//
// What changes, and nothing else:
// - `type: [T, "null"]` → `type: T, nullable: true`; several non-null types → `anyOf`, one per type;
//   a `{"type":"null"}` branch of anyOf/oneOf → `nullable: true` (one branch left is inlined).
// - `oneOf` → `anyOf`; `allOf` → its members merged (properties and required joined).
// - `const: "x"` → `enum: ["x"]`; `const: null` → `nullable`; other consts are dropped.
// - `$ref` to `#/$defs/…` or `#/definitions/…` → the definition inlined (recursion is refused).
// - types upper-cased (STRING, NUMBER, INTEGER, BOOLEAN, ARRAY, OBJECT); a missing type inferred
//   from properties / items / a string enum.
// - kept: title, description, enum (of strings; other enums are dropped), format (only the ones
//   Gemini knows: date-time and enum for strings, int32/int64, float/double), minLength,
//   maxLength, pattern, minimum, maximum, minItems, maxItems, items, properties, required (only
//   names that are properties), minProperties, maxProperties.
// - dropped: every other keyword ($schema, $id, additionalProperties, examples, default,
//   exclusiveMinimum, multipleOf, uniqueItems, patternProperties, not, if/then/else, ...).
// An object without properties cannot be described (Gemini refuses it): that is INVALID_ARGUMENT
// naming the path and the `response_schema_field: responseJsonSchema` alternative.
import Foundation
import PrismPluginKit

enum GeminiSchema {
    /// Deeper than this is a recursive $ref or an absurd schema.
    static let maxDepth = 32

    static let types = ["string": "STRING", "number": "NUMBER", "integer": "INTEGER", "boolean": "BOOLEAN", "array": "ARRAY", "object": "OBJECT"]
    static let formats = ["STRING": ["date-time", "enum"], "INTEGER": ["int32", "int64"], "NUMBER": ["float", "double"]]
    static let kept = ["STRING": ["minLength", "maxLength"], "INTEGER": ["minimum", "maximum"], "NUMBER": ["minimum", "maximum"],
                       "ARRAY": ["minItems", "maxItems"], "OBJECT": ["minProperties", "maxProperties"]]

    static func openAPI(from schema: Any) throws -> [String: Any] {
        guard let root = schema as? [String: Any] else { throw invalid("$", "the response schema must be a JSON object") }
        var definitions = root["definitions"] as? [String: Any] ?? [:]
        for (name, value) in root["$defs"] as? [String: Any] ?? [:] { definitions[name] = value }
        return try Converter(definitions: definitions).convert(root, path: "$", depth: 0)
    }

    static func invalid(_ path: String, _ why: String) -> CallFailure {
        CallFailure(.invalidArgument, "response_schema_json at \(path): \(why)")
    }

    private struct Converter {
        let definitions: [String: Any]

        func convert(_ node: Any, path: String, depth: Int) throws -> [String: Any] {
            guard depth < GeminiSchema.maxDepth else { throw invalid(path, "nested deeper than \(GeminiSchema.maxDepth) levels (a recursive $ref?)") }
            if node as? Bool == true { return [:] }
            guard var s = node as? [String: Any] else { throw invalid(path, "a schema must be an object") }
            if s["$ref"] != nil { return try convert(resolved(s, path: path), path: path, depth: depth + 1) }
            if let all = s.removeValue(forKey: "allOf") as? [Any] { s = try merged(s, all, path: path) }

            var nullable = s["nullable"] as? Bool ?? false
            var typeNames = (s["type"] as? String).map { [$0] } ?? (s["type"] as? [String]) ?? []
            if typeNames.contains("null") { nullable = true }
            typeNames.removeAll { $0 == "null" }
            if let constant = s["const"] {
                if constant is NSNull { nullable = true } else if constant is String { s["enum"] = [constant] }
            }
            var branches = (s["anyOf"] as? [Any] ?? []) + (s["oneOf"] as? [Any] ?? [])
            let before = branches.count
            branches.removeAll { (($0 as? [String: Any])?["type"] as? String) == "null" }
            if branches.count < before { nullable = true }
            for key in ["type", "const", "anyOf", "oneOf", "nullable"] { s.removeValue(forKey: key) }

            var out: [String: Any]
            if branches.count == 1 {
                out = try convert((branches[0] as? [String: Any] ?? [:]).merging(s) { branch, _ in branch }, path: path, depth: depth + 1)
            } else if !branches.isEmpty {
                out = ["anyOf": try branches.enumerated().map { try convert($1, path: "\(path).anyOf[\($0)]", depth: depth + 1) }]
                copyAnnotations(s, into: &out)
            } else if typeNames.count > 1 {
                out = ["anyOf": try typeNames.map { name in
                    var one = s
                    one["type"] = name
                    return try convert(one, path: "\(path)<\(name)>", depth: depth + 1)
                }]
                copyAnnotations(s, into: &out)
            } else {
                out = try typed(s, typeName: typeNames.first, path: path, depth: depth)
            }
            if nullable { out["nullable"] = true }
            return out
        }

        /// One schema of one type (or none), with that type's keywords.
        private func typed(_ s: [String: Any], typeName: String?, path: String, depth: Int) throws -> [String: Any] {
            var type: String?
            if let typeName {
                guard let known = GeminiSchema.types[typeName] else { throw invalid(path, "type '\(typeName)' is not a JSON Schema type") }
                type = known
            } else if s["properties"] != nil {
                type = "OBJECT"
            } else if s["items"] != nil {
                type = "ARRAY"
            } else if let values = s["enum"] as? [Any], !values.isEmpty, values.allSatisfy({ $0 is String }) {
                type = "STRING"
            }
            var out: [String: Any] = [:]
            copyAnnotations(s, into: &out)
            guard let type else { return out }
            out["type"] = type
            if type == "STRING", let values = s["enum"] as? [Any], values.allSatisfy({ $0 is String }) { out["enum"] = values }
            if let format = s["format"] as? String, GeminiSchema.formats[type]?.contains(format) == true { out["format"] = format }
            for key in GeminiSchema.kept[type] ?? [] { if let value = s[key] as? NSNumber { out[key] = value } }
            if type == "STRING", let pattern = s["pattern"] as? String { out["pattern"] = pattern }
            if type == "ARRAY", let items = s["items"] {
                guard !(items is [Any]) else { throw invalid(path, "tuple `items` (an array of schemas) has no OpenAPI-subset equivalent") }
                out["items"] = try convert(items, path: "\(path).items", depth: depth + 1)
            }
            if type == "OBJECT" {
                let properties = s["properties"] as? [String: Any] ?? [:]
                guard !properties.isEmpty else {
                    throw invalid(path, "an object without properties cannot be a Gemini responseSchema; set the gemini plugin's response_schema_field to responseJsonSchema to send JSON Schema as it is")
                }
                var converted: [String: Any] = [:]
                for (name, value) in properties { converted[name] = try convert(value, path: "\(path).properties.\(name)", depth: depth + 1) }
                out["properties"] = converted
                if let required = s["required"] as? [String] {
                    let known = required.filter { properties[$0] != nil }
                    if !known.isEmpty { out["required"] = known }
                }
            }
            return out
        }

        /// A schema with `$ref` replaced by the definition it names (its sibling keywords win).
        private func resolved(_ s: [String: Any], path: String) throws -> [String: Any] {
            guard let value = s["$ref"] else { return s }
            guard let ref = value as? String else { throw invalid(path, "$ref must be a string") }
            let name = ["#/$defs/", "#/definitions/"].first { ref.hasPrefix($0) }.map { String(ref.dropFirst($0.count)) }
            guard let name, let target = definitions[name] as? [String: Any] else { throw invalid(path, "$ref '\(ref)' is not a local definition") }
            var siblings = s
            siblings.removeValue(forKey: "$ref")
            return target.merging(siblings) { _, sibling in sibling }
        }

        private func copyAnnotations(_ s: [String: Any], into out: inout [String: Any]) {
            for key in ["title", "description"] { if let text = s[key] as? String { out[key] = text } }
        }

        /// `s` with the members of allOf folded in: later members win, properties and required join.
        private func merged(_ s: [String: Any], _ members: [Any], path: String) throws -> [String: Any] {
            var result = s
            for (index, member) in members.enumerated() {
                guard let member = member as? [String: Any] else { throw invalid("\(path).allOf[\(index)]", "a schema must be an object") }
                let m = try resolved(member, path: "\(path).allOf[\(index)]")
                let properties = (result["properties"] as? [String: Any] ?? [:]).merging(m["properties"] as? [String: Any] ?? [:]) { _, new in new }
                let required = (result["required"] as? [String] ?? []) + (m["required"] as? [String] ?? [])
                result = result.merging(m) { _, new in new }
                if !properties.isEmpty { result["properties"] = properties }
                if !required.isEmpty { result["required"] = Array(NSOrderedSet(array: required)) as? [String] ?? required }
            }
            return result
        }
    }
}
