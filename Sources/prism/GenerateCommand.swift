// `prism generate`: sends one Generate request (a prompt plus files) and prints the streamed
// answer: the `routed` line (provider, model, adaptations) to stderr, the text to stdout.
import ArgumentParser
import Foundation
import NIOCore
import PrismProto
import PrismRPC

struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "generate", abstract: "Send a prompt (and files) through the gateway and print the answer.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The prompt.") var prompt: String
    @Option(name: .shortAndLong, help: "A file to attach (image, PDF, audio, video); repeatable.") var file: [String] = []
    @Option(help: "Route to this model, provider/model.") var model: String?
    @Option(help: "Models to fall back to, in order; repeatable.") var fallback: [String] = []
    @Flag(help: "Only providers that take the inputs as they are (no adaptation).") var nativeOnly = false
    @Option(help: "Seconds before the call is abandoned.") var timeout: Int64?
    @OptionGroup var output: JSONOption

    func run() async throws {
        let b = ProtoBuilder()
        let parts = try [b.textPart(prompt)] + file.map { try b.filePart($0) }
        let message = b.message(prism__v1__message__init)
        message.pointee.role = PRISM__V1__ROLE__ROLE_USER
        message.pointee.n_parts = parts.count
        message.pointee.parts = b.array(parts)
        let request = b.message(prism__v1__generate_request__init)
        request.pointee.n_messages = 1
        request.pointee.messages = b.array([message])
        let route = b.message(prism__v1__route__init)
        route.pointee.model = b.string(model ?? "")
        route.pointee.n_fallbacks = fallback.count
        route.pointee.fallbacks = b.strings(fallback)
        route.pointee.adaptation = nativeOnly ? PRISM__V1__ADAPTATION__ADAPTATION_NATIVE_ONLY : PRISM__V1__ADAPTATION__ADAPTATION_AUTO
        request.pointee.route = route
        var body = ByteBuffer()
        b.pack(request, into: &body)

        let client = try await connection.connect()
        defer { Task { await client.close() } }
        do {
            let call = try await client.serverStreaming("/prism.v1.Prism/Generate", body, metadata: connection.metadata,
                                                        timeout: timeout.map { .seconds($0) })
            for try await reply in call.responses {
                if output.json {
                    try JSONOutput.message(prism__v1__generate_event__init, reply)
                    continue
                }
                let event = try ProtoMessage(prism__v1__generate_event__init, buffer: reply)
                withExtendedLifetime(event) { Self.show(event.pointee) }
            }
            let status = await call.status()
            if status.code != .ok { throw RPCError(status.code, status.message) }
        } catch let error as RPCError {
            throw reportFailure(error)
        }
    }

    private static func show(_ e: Prism__V1__GenerateEvent) {
        let stderr = FileHandle.standardError
        switch e.event_case {
        case PRISM__V1__GENERATE_EVENT__EVENT_ROUTED:
            guard let r = e.routed?.pointee else { return }
            let steps = UnsafeBufferPointer(start: r.adaptations, count: r.adaptations == nil ? 0 : r.n_adaptations).map { String(protoC: $0) }
            stderr.write(Data("routed: \(String(protoC: r.model)) (attempt \(r.attempt))\(steps.isEmpty ? "" : "; " + steps.joined(separator: "; "))\n".utf8))
        case PRISM__V1__GENERATE_EVENT__EVENT_TEXT:
            FileHandle.standardOutput.write(Data(String(protoC: e.text?.pointee.text).utf8))
        case PRISM__V1__GENERATE_EVENT__EVENT_TOOL_CALL:
            guard let t = e.tool_call?.pointee else { return }
            print("\n[tool call \(String(protoC: t.name)) \(String(protoC: t.arguments_json))]")
        case PRISM__V1__GENERATE_EVENT__EVENT_USAGE:
            guard let u = e.usage?.pointee else { return }
            stderr.write(Data("\nusage: \(u.input_tokens) in, \(u.output_tokens) out, \(u.cost_usd_micros) µ$\n".utf8))
        default:
            break
        }
    }
}
