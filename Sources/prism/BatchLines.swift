// The JSONL of `prism batch`: each input line a GenerateRequest in proto3 JSON, limited to the
// subset below, plus its custom_id; each output line a BatchResult in proto3 JSON (lowerCamel
// names, 64-bit integers as strings). The subset, until the CLI has the full proto3 JSON mapping:
//   {"custom_id": "a1", "model": "openai/gpt-4o", "system": "...", "max_tokens": 200, "temperature": 0,
//    "messages": [{"role": "user", "parts": [{"text": "..."}]}]}
// (lowerCamel spellings, "route": {"model": ...}, and ROLE_USER / ROLE_ASSISTANT are read too).
import Foundation
import PrismJSON
import PrismProto

enum BatchLines {
    struct LineError: Error, CustomStringConvertible {
        let description: String
    }

    /// The keys a line may hold, for the error that names an unknown one.
    static let subset = "custom_id, model (or route.model), system, max_tokens, temperature, messages[].role, messages[].parts[].text"

    /// One BatchItem from line `number` (1-based) of the file, built in `b`.
    static func item(_ line: String, number: Int, in b: ProtoBuilder) throws -> UnsafeMutablePointer<Prism__V1__BatchItem> {
        func fail(_ what: String) -> LineError { LineError(description: "line \(number): \(what)") }
        let value: JSONValue
        do { value = try JSONValue.parse(line) } catch { throw fail("\(error)") }
        guard let members = value.object else { throw fail("not a JSON object") }
        let item = b.message(prism__v1__batch_item__init)
        let request = b.message(prism__v1__generate_request__init)
        let route = b.message(prism__v1__route__init)
        var messages: [UnsafeMutablePointer<Prism__V1__Message>] = []
        for (key, member) in members {
            switch key {
            case "custom_id", "customId":
                guard let id = member.string else { throw fail("custom_id must be a string") }
                item.pointee.custom_id = b.string(id)
            case "model":
                guard let model = member.string else { throw fail("model must be a string") }
                route.pointee.model = b.string(model)
            case "route":
                guard let model = member["model"]?.string, member.object?.count == 1 else { throw fail("route may hold only model (a string)") }
                route.pointee.model = b.string(model)
            case "system":
                guard let system = member.string else { throw fail("system must be a string") }
                request.pointee.system = b.string(system)
            case "max_tokens", "maxTokens":
                guard let n = member.uint64, n <= UInt64(UInt32.max) else { throw fail("max_tokens must be a whole number") }
                request.pointee.max_tokens = UInt32(n)
            case "temperature":
                guard let t = member.double else { throw fail("temperature must be a number") }
                let value = b.message(prism__v1__float_value__init)
                value.pointee.value = Float(t)
                request.pointee.temperature = value
            case "messages":
                guard let list = member.array else { throw fail("messages must be an array") }
                messages = try list.enumerated().map { index, m in try message(m, in: b) { fail("messages[\(index)]: \($0)") } }
            default:
                throw fail("'\(key)' is not in the JSON subset this build reads (\(subset))")
            }
        }
        guard String(protoC: item.pointee.custom_id).isEmpty == false else { throw fail("custom_id is missing") }
        guard !messages.isEmpty else { throw fail("messages is missing or empty") }
        request.pointee.n_messages = messages.count
        request.pointee.messages = b.array(messages)
        request.pointee.route = route
        item.pointee.request_case = PRISM__V1__BATCH_ITEM__REQUEST_GENERATE
        item.pointee.generate = request
        return item
    }

    private static func message(_ m: JSONValue, in b: ProtoBuilder, _ fail: (String) -> LineError) throws -> UnsafeMutablePointer<Prism__V1__Message> {
        let message = b.message(prism__v1__message__init)
        switch m["role"]?.string {
        case "user", "ROLE_USER", nil: message.pointee.role = PRISM__V1__ROLE__ROLE_USER
        case "assistant", "ROLE_ASSISTANT": message.pointee.role = PRISM__V1__ROLE__ROLE_ASSISTANT
        case let other?: throw fail("role '\(other)' is not user or assistant")
        }
        guard let parts = m["parts"]?.array else { throw fail("parts must be an array of {\"text\": ...}") }
        let texts = try parts.map { part -> UnsafeMutablePointer<Prism__V1__Part> in
            guard let text = part["text"]?.string, part.object?.count == 1 else { throw fail("only text parts are in the subset") }
            return b.textPart(text)
        }
        message.pointee.n_parts = texts.count
        message.pointee.parts = b.array(texts)
        return message
    }

    /// A BatchResult as one line of proto3 JSON.
    static func json(_ r: Prism__V1__BatchResult) -> String {
        var members: [(key: String, value: JSONValue)] = [("customId", .string(String(protoC: r.custom_id)))]
        switch r.result_case {
        case PRISM__V1__BATCH_RESULT__RESULT_TEXT:
            members.append(("text", .string(String(protoC: r.text))))
        case PRISM__V1__BATCH_RESULT__RESULT_EXTRACT:
            if let e = r.extract?.pointee {
                var extract: [(key: String, value: JSONValue)] = [("json", .string(String(protoC: e.json))), ("attempts", .number(Double(e.attempts)))]
                if let routed = e.routed?.pointee {
                    extract.append(("routed", .object([("provider", .string(String(protoC: routed.provider))), ("model", .string(String(protoC: routed.model)))])))
                }
                members.append(("extract", .object(extract)))
            }
        case PRISM__V1__BATCH_RESULT__RESULT_ERROR:
            if let e = r.error?.pointee {
                members.append(("error", .object([("code", .number(Double(e.code))), ("message", .string(String(protoC: e.message)))])))
            }
        default:
            break
        }
        if let u = r.usage?.pointee {
            // proto3 JSON writes 64-bit integers as strings.
            members.append(("usage", .object([("inputTokens", .string("\(u.input_tokens)")), ("outputTokens", .string("\(u.output_tokens)")),
                                              ("costUsdMicros", .string("\(u.cost_usd_micros)"))])))
        }
        return JSONValue.object(members).jsonText
    }
}
