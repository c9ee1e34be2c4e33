// A response schema as Anthropic's strongest JSON mechanism: one tool whose input_schema is the
// schema, forced with tool_choice, whose input comes back to the host as the answer's text.
// Anthropic takes only object schemas as input_schema, so any other root is wrapped in {"value": …}.
import Foundation
import PrismPluginKit

enum SchemaTool {
    /// The tool for an object schema: its input is the answer, streamed as text while it arrives.
    static let name = "prism_json"
    /// The tool for any other root: its input is {"value": answer}, unwrapped when it ends.
    static let wrappedName = "prism_json_value"
    static let description = "Give the answer as JSON matching this schema. Call this tool exactly once with the complete answer."

    /// The tool definition for `schemaJSON` (JSON text of a JSON Schema).
    static func definition(schemaJSON: String) throws -> [String: Any] {
        guard let schema = try? JSONSerialization.jsonObject(with: Data(schemaJSON.utf8), options: [.fragmentsAllowed]) else {
            throw CallFailure(.invalidArgument, "response schema is not valid JSON")
        }
        if var object = schema as? [String: Any], object["type"] as? String == "object" {
            // Boolean or non-object roots cannot be an input_schema; object roots go as they are.
            object.removeValue(forKey: "$schema")
            return ["name": name, "description": description, "input_schema": object]
        }
        var inner = schema
        var wrapper: [String: Any] = ["type": "object", "properties": [:], "required": ["value"], "additionalProperties": false]
        if var object = schema as? [String: Any] {
            // "#/$defs/…" references keep resolving when the definitions move to the new root.
            if let defs = object.removeValue(forKey: "$defs") { wrapper["$defs"] = defs }
            object.removeValue(forKey: "$schema")
            inner = object
        }
        wrapper["properties"] = ["value": inner]
        return ["name": wrappedName, "description": description, "input_schema": wrapper]
    }

    /// Whether a tool_use block of this name carries the answer rather than a client tool call.
    static func isAnswer(_ toolName: String) -> Bool { toolName == name || toolName == wrappedName }

    /// The answer text of a finished tool_use input: as it is, or the wrapped value.
    static func answer(toolName: String, inputJSON: String) -> String {
        guard toolName == wrappedName else { return inputJSON }
        guard let input = try? JSONValue.parse(inputJSON), let value = input["value"] else { return inputJSON }
        return value.jsonText
    }
}
