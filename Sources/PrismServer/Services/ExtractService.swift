// prism.v1.Prism/Extract: decodes an ExtractRequest, compiles its schema (a schema that is not
// draft 2020-12 JSON Schema is INVALID_ARGUMENT before any vendor call) and runs the Extractor,
// whose answer is valid against the schema or the call fails (FAILED_PRECONDITION naming paths).
import Foundation
import NIOCore
import PrismProto
import PrismProviders
import PrismRPC
import PrismSchema

enum ExtractService {
    /// The unary handler of Extract.
    static func handler(_ extractor: Extractor) -> RPCHandler {
        .unary { body, context in
            let message = try decodeRequest(prism__v1__extract_request__init, body)
            var (request, schema) = try withExtendedLifetime(message) { try extraction(message.pointee) }
            request.deadline = GenerateService.deadline(context)
            do {
                let result = try await extractor.extract(request, schema: schema)
                context.addTrailer("prism-extract-attempts", "\(result.attempts)")
                return encode(result)
            } catch let failure as ProviderFailure {
                throw GenerateService.rpcError(failure, context)
            }
        }
    }

    /// The request as a first generation, and its compiled schema.
    static func extraction(_ r: Prism__V1__ExtractRequest) throws -> (GenerationRequest, JSONSchema) {
        let schemaText = String(protoC: r.schema_json)
        guard !schemaText.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw RPCError(.invalidArgument, "schema_json is empty: Extract needs a JSON Schema (draft 2020-12)")
        }
        let schema: JSONSchema
        do {
            schema = try JSONSchema(text: schemaText)
        } catch let error as SchemaError {
            throw RPCError(.invalidArgument, "schema_json is not a valid JSON Schema: \(error)")
        }
        let input = try elements(r.input, r.n_input).enumerated().map { index, part in
            try GenerateService.part(part.pointee, "input[\(index)]")
        }
        guard !input.isEmpty else { throw RPCError(.invalidArgument, "input: the request has nothing to extract from") }
        var request = Extractor.request(input: input, schemaJSON: schemaText, instructions: String(protoC: r.instructions))
        request.route = try GenerateService.routeRequest(r.route)
        request.labels = GenerateService.labels(r.labels, r.n_labels)
        return (request, schema)
    }

    static func encode(_ result: Extraction) -> ByteBuffer {
        let b = ProtoBuilder()
        return encodeResponse(b, response(result, in: b))
    }

    /// The ExtractResponse of `result`, built in `b` (also a batch item's result).
    static func response(_ result: Extraction, in b: ProtoBuilder) -> UnsafeMutablePointer<Prism__V1__ExtractResponse> {
        let response = b.message(prism__v1__extract_response__init)
        response.pointee.json = b.string(result.json)
        response.pointee.routed = b.routeInfo(result.routed)
        response.pointee.usage = b.usage(result.usage)
        response.pointee.attempts = UInt32(result.attempts)
        return response
    }
}
