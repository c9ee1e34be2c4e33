// Fuzz targets for JSON: PrismJSON's parser (what every vendor answer and Connect JSON body goes
// through) and PrismSchema's compile + validate (Extract checks vendor answers with it).
import PrismJSON
import PrismSchema

enum JSONFuzzTargets {
    /// A JSON document. What parses must print as JSON that parses to an equal value.
    static let json = FuzzTarget(name: "json", summary: "JSON parser; what parses prints and parses back equal") { raw in
        guard let value = try? JSONValue.parse(raw) else { return }
        let text = value.jsonText
        guard let again = try? JSONValue.parse(text), again.isEquivalent(to: value) else {
            fuzzFailure("JSON printed as \(text.prefix(200)) does not parse back to the same value")
        }
    }

    /// A schema, a NUL, then an instance (the schema itself without a NUL): compile, validate.
    static let schema = FuzzTarget(name: "schema", summary: "JSON Schema 2020-12 compile and validate") { raw in
        let (schemaBytes, instanceBytes) = FuzzInput(raw).splitAtNUL()
        guard let document = try? JSONValue.parse(Array(schemaBytes)),
              let schema = try? JSONSchema(document) else { return }
        let instance = instanceBytes.flatMap { try? JSONValue.parse(Array($0)) } ?? document
        _ = schema.validate(instance)
    }
}
