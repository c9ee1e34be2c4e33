// `prism extract`: sends files (and optional instructions) with a JSON Schema through the Extract
// RPC and prints the JSON, which the gateway has validated against the schema; where it came from
// and what it cost go to stderr.
import ArgumentParser
import Foundation
import NIOCore
import PrismProto
import PrismRPC

struct ExtractCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract", abstract: "Extract JSON valid against a JSON Schema from files (images, PDFs, audio, video, text).")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The files to extract from.") var files: [String]
    @Option(help: "The JSON Schema (draft 2020-12) file the answer must be valid against.") var schema: String
    @Option(help: "What to extract, in words; the schema's descriptions are often enough.") var instructions: String?
    @Option(help: "Route to this model, provider/model.") var model: String?
    @Option(help: "Seconds before the call is abandoned.") var timeout: Int64 = 600
    @OptionGroup var output: JSONOption

    func run() async throws {
        let b = ProtoBuilder()
        let parts = try files.map { try b.filePart($0) }
        let request = b.message(prism__v1__extract_request__init)
        request.pointee.n_input = parts.count
        request.pointee.input = b.array(parts)
        request.pointee.schema_json = b.string(String(decoding: try MediaIO.read(schema), as: UTF8.self))
        request.pointee.instructions = b.string(instructions ?? "")
        let route = b.message(prism__v1__route__init)
        route.pointee.model = b.string(model ?? "")
        request.pointee.route = route
        var body = ByteBuffer()
        b.pack(request, into: &body)

        let client = try await connection.connect()
        defer { Task { await client.close() } }
        do {
            let reply = try await client.unary("/prism.v1.Prism/Extract", body, metadata: connection.metadata, timeout: .seconds(timeout))
            if output.json { return try JSONOutput.message(prism__v1__extract_response__init, reply) }
            let response = try ProtoMessage(prism__v1__extract_response__init, buffer: reply)
            withExtendedLifetime(response) {
                let r = response.pointee
                print(String(protoC: r.json))
                let model = r.routed.map { String(protoC: $0.pointee.model) } ?? "?"
                let usage = r.usage?.pointee
                FileHandle.standardError.write(Data(("extracted by \(model) in \(r.attempts) attempt\(r.attempts == 1 ? "" : "s"); "
                    + "\(usage?.input_tokens ?? 0) in, \(usage?.output_tokens ?? 0) out, \(usage?.cost_usd_micros ?? 0) µ$\n").utf8))
            }
        } catch let error as RPCError {
            throw reportFailure(error)
        }
    }
}
