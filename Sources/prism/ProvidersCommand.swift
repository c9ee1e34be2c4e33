// `prism providers`: the server's capability matrix as a table, one column per loaded
// provider/model and one row per capability (image, PDF, audio, video input, image generation,
// audio output, multi-image limit), limits on request; then each plugin file's state and the
// model families (id patterns) it routes beyond its listed models.
import ArgumentParser
import Foundation
import NIOCore
import PrismProto
import PrismRPC

struct ProvidersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "providers", abstract: "Show the capability matrix of the loaded provider plugins.")

    @OptionGroup var connection: ConnectionOptions
    @Flag(help: "Add rows for each model's limits (image size, PDF pages, audio length, request size).") var limits = false
    @OptionGroup var output: JSONOption

    func run() async throws {
        let client = try await connection.connect()
        defer { Task { await client.close() } }
        let response: ProtoMessage<Prism__V1__ListProvidersResponse>
        do {
            let builder = ProtoBuilder()
            var body = ByteBuffer()
            builder.pack(builder.message(prism__v1__list_providers_request__init), into: &body)
            let reply = try await client.unary("/prism.v1.Prism/ListProviders", body, metadata: connection.metadata)
            response = try ProtoMessage(prism__v1__list_providers_response__init, buffer: reply)
            if output.json { return try JSONOutput.message(prism__v1__list_providers_response__init, reply) }
        } catch let error as RPCError {
            throw reportFailure(error)
        }
        withExtendedLifetime(response) { print(Self.render(response.pointee, limits: limits)) }
    }

    /// The table and the plugin list as text.
    static func render(_ response: Prism__V1__ListProvidersResponse, limits: Bool) -> String {
        let providers = list(response.providers, response.n_providers)
        let models = providers.filter { $0.pointee.state == PRISM__V1__PROVIDER_STATE__PROVIDER_STATE_LOADED }
            .flatMap { list($0.pointee.models, $0.pointee.n_models) }
        var out = ""
        if models.isEmpty {
            out += "No provider plugin is loaded.\n"
        } else {
            func has(_ values: UnsafeMutablePointer<Prism__V1__Modality>?, _ n: Int, _ m: Prism__V1__Modality) -> Bool {
                UnsafeBufferPointer(start: values, count: values == nil ? 0 : n).contains(m)
            }
            func yes(_ b: Bool) -> String { b ? "yes" : "—" }
            func number<T: BinaryInteger>(_ v: T, _ unit: String = "") -> String { v == 0 ? "—" : "\(v)\(unit)" }
            var rows: [(String, (Prism__V1__Model) -> String)] = [
                ("image input", { yes(has($0.inputs, $0.n_inputs, PRISM__V1__MODALITY__MODALITY_IMAGE)) }),
                ("PDF input", { yes(has($0.inputs, $0.n_inputs, PRISM__V1__MODALITY__MODALITY_PDF)) }),
                ("audio input", { yes(has($0.inputs, $0.n_inputs, PRISM__V1__MODALITY__MODALITY_AUDIO)) }),
                ("video input", { yes(has($0.inputs, $0.n_inputs, PRISM__V1__MODALITY__MODALITY_VIDEO)) }),
                ("image generation", { m in
                    yes(has(m.outputs, m.n_outputs, PRISM__V1__MODALITY__MODALITY_IMAGE)
                        || UnsafeBufferPointer(start: m.operations, count: m.operations == nil ? 0 : m.n_operations).contains(PRISM__V1__OPERATION__OPERATION_IMAGE_GENERATE))
                }),
                ("audio output", { yes(has($0.outputs, $0.n_outputs, PRISM__V1__MODALITY__MODALITY_AUDIO)) }),
                ("multi-image limit", { number($0.limits?.pointee.max_images ?? 0) }),
                ("operations", { m in
                    UnsafeBufferPointer(start: m.operations, count: m.operations == nil ? 0 : m.n_operations)
                        .map { operationName($0) }.joined(separator: ",")
                }),
            ]
            if limits {
                rows += [
                    ("image long edge", { number($0.limits?.pointee.max_image_long_edge ?? 0, "px") }),
                    ("image short edge", { number($0.limits?.pointee.max_image_short_edge ?? 0, "px") }),
                    ("image pixels", { number($0.limits?.pointee.max_image_pixels ?? 0) }),
                    ("image bytes", { number($0.limits?.pointee.max_image_bytes ?? 0) }),
                    ("image types", { m in
                        guard let l = m.limits?.pointee, l.n_image_mime_types > 0 else { return "—" }
                        return UnsafeBufferPointer(start: l.image_mime_types, count: l.n_image_mime_types)
                            .map { String(protoC: $0).replacingOccurrences(of: "image/", with: "") }.joined(separator: ",")
                    }),
                    ("PDF pages", { number($0.limits?.pointee.max_pdf_pages ?? 0) }),
                    ("PDF bytes", { number($0.limits?.pointee.max_pdf_bytes ?? 0) }),
                    ("audio seconds", { number($0.limits?.pointee.max_audio_seconds ?? 0) }),
                    ("audio bytes", { number($0.limits?.pointee.max_audio_bytes ?? 0) }),
                    ("request bytes", { number($0.limits?.pointee.max_request_bytes ?? 0) }),
                    ("tools", { yes($0.features?.pointee.tools ?? 0 != 0) }),
                    ("JSON schema", { yes($0.features?.pointee.json_schema ?? 0 != 0) }),
                    ("streaming", { yes($0.features?.pointee.streaming ?? 0 != 0) }),
                ]
            }
            let header = [""] + models.map { String(protoC: $0.pointee.id) }
            let table = [header] + rows.map { name, cell in [name] + models.map { cell($0.pointee) } }
            let widths = (0..<header.count).map { column in table.map { $0[column].count }.max() ?? 0 }
            for row in table {
                out += zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                    .replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) + "\n"
            }
        }
        out += "\nplugins:\n"
        for p in providers {
            let state: String
            switch p.pointee.state {
            case PRISM__V1__PROVIDER_STATE__PROVIDER_STATE_LOADED: state = "loaded"
            case PRISM__V1__PROVIDER_STATE__PROVIDER_STATE_DRAINING: state = "draining"
            case PRISM__V1__PROVIDER_STATE__PROVIDER_STATE_FAILED: state = "FAILED"
            default: state = "unknown"
            }
            let name = String(protoC: p.pointee.name)
            let reason = String(protoC: p.pointee.state_reason)
            out += "  \(String(protoC: p.pointee.plugin))  \(state)" + (name.isEmpty ? "" : "  \(name) \(String(protoC: p.pointee.version))")
                + (reason.isEmpty ? "" : "  (\(reason))") + "\n"
            // Any id these patterns match is routable too, with the family's capabilities.
            let families = list(p.pointee.families, p.pointee.n_families).map { String(protoC: $0.pointee.id) }
            if !families.isEmpty { out += "    and any model id matching: \(families.joined(separator: ", "))\n" }
        }
        if providers.isEmpty { out += "  none found (set PRISM_PLUGIN_PATH on the server)\n" }
        return out
    }

    private static func operationName(_ op: Prism__V1__Operation) -> String {
        switch op {
        case PRISM__V1__OPERATION__OPERATION_GENERATE: return "generate"
        case PRISM__V1__OPERATION__OPERATION_TRANSCRIBE: return "transcribe"
        case PRISM__V1__OPERATION__OPERATION_SYNTHESIZE: return "synthesize"
        case PRISM__V1__OPERATION__OPERATION_OCR: return "ocr"
        case PRISM__V1__OPERATION__OPERATION_EMBED: return "embed"
        case PRISM__V1__OPERATION__OPERATION_IMAGE_GENERATE: return "image-generate"
        default: return "?"
        }
    }
}

/// The non-NULL elements of a protobuf-c repeated message field.
private func list<Element>(_ array: UnsafeMutablePointer<UnsafeMutablePointer<Element>?>?, _ count: Int) -> [UnsafeMutablePointer<Element>] {
    UnsafeBufferPointer(start: array, count: array == nil ? 0 : count).compactMap { $0 }
}
