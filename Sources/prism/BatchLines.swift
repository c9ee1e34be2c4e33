// The JSONL of `prism batch`, in proto3's JSON mapping (ProtoJSON). An input line is a
// prism.v1.BatchItem, `{"custom_id": "q1", "generate": {GenerateRequest}}` or `"extract": {...}`,
// or for short a GenerateRequest with its custom_id beside its fields (and "model" for
// "route": {"model": ...}): `{"custom_id": "q1", "model": "openai/gpt-4o", "messages": [...]}`.
// An output line is a prism.v1.BatchResult.
import Foundation
import PrismJSON
import PrismProto

enum BatchLines {
    struct LineError: Error, CustomStringConvertible {
        let description: String
    }

    /// The BatchItem of line `number` (1-based) of the file.
    static func item(_ line: String, number: Int) throws -> ProtoMessage<Prism__V1__BatchItem> {
        func fail(_ what: String) -> LineError { LineError(description: "line \(number): \(what)") }
        let value: JSONValue
        do { value = try JSONValue.parse(line) } catch { throw fail("\(error)") }
        guard let members = value.object else { throw fail("not a JSON object") }
        let keys = Set(members.map(\.key))
        var item = members
        if keys.isDisjoint(with: ["generate", "extract"]) {
            // The short form: the GenerateRequest's own fields beside the custom_id.
            let idKeys: Set<String> = ["custom_id", "customId"]
            var request = members.filter { !idKeys.contains($0.key) }
            if let model = request.firstIndex(where: { $0.key == "model" }) {
                guard !keys.contains("route") else { throw fail("model and route both set; put the model in route") }
                request[model] = (key: "route", value: .object([(key: "model", value: request[model].value)]))
            }
            item = members.filter { idKeys.contains($0.key) } + [(key: "generate", value: .object(request))]
        }
        do {
            let wire = try ProtoJSON.decode(protoDescriptor(prism__v1__batch_item__init), json: Array(JSONValue.object(item).jsonText.utf8))
            return try ProtoMessage(prism__v1__batch_item__init, bytes: wire)
        } catch let error as ProtoJSONError {
            throw fail(error.description)
        }
    }

    /// A BatchResult (wire format) as one line of proto3 JSON.
    static func json(_ result: [UInt8]) throws -> String {
        try ProtoJSON.encode(protoDescriptor(prism__v1__batch_result__init), binary: result)
    }
}
