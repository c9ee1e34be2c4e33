// `prism ocr FILE`: reads the text of an image or a PDF through Generate routed to an OCR model
// (local/tesseract by default): the gateway fits the image, or rasterizes the PDF's pages, and
// the model's text streams to stdout line by line.
import ArgumentParser
import Foundation
import NIOCore
import PrismProto
import PrismRPC

struct OCRCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ocr", abstract: "Read the text of an image or PDF through the gateway.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "An image (PNG, JPEG, WebP, TIFF, ...) or a PDF.") var file: String
    @Option(help: "The OCR model, provider/model.") var model = "local/tesseract"
    @Option(help: "Seconds before the call is abandoned.") var timeout: Int64 = 600
    @OptionGroup var output: JSONOption

    func run() async throws {
        let b = ProtoBuilder()
        let part = try b.filePart(file)
        let message = b.message(prism__v1__message__init)
        message.pointee.role = PRISM__V1__ROLE__ROLE_USER
        message.pointee.n_parts = 1
        message.pointee.parts = b.array([part])
        let request = b.message(prism__v1__generate_request__init)
        request.pointee.n_messages = 1
        request.pointee.messages = b.array([message])
        let route = b.message(prism__v1__route__init)
        route.pointee.model = b.string(model)
        request.pointee.route = route
        var body = ByteBuffer()
        b.pack(request, into: &body)

        let client = try await connection.connect()
        defer { Task { await client.close() } }
        do {
            let call = try await client.serverStreaming("/prism.v1.Prism/Generate", body, metadata: connection.metadata, timeout: .seconds(timeout))
            for try await reply in call.responses {
                if output.json {
                    try JSONOutput.message(prism__v1__generate_event__init, reply)
                    continue
                }
                let event = try ProtoMessage(prism__v1__generate_event__init, buffer: reply)
                withExtendedLifetime(event) {
                    let e = event.pointee
                    if e.event_case == PRISM__V1__GENERATE_EVENT__EVENT_ROUTED, let r = e.routed?.pointee {
                        let steps = UnsafeBufferPointer(start: r.adaptations, count: r.adaptations == nil ? 0 : r.n_adaptations).map { String(protoC: $0) }
                        FileHandle.standardError.write(Data("routed: \(String(protoC: r.model))\(steps.isEmpty ? "" : "; " + steps.joined(separator: "; "))\n".utf8))
                    } else if e.event_case == PRISM__V1__GENERATE_EVENT__EVENT_TEXT {
                        FileHandle.standardOutput.write(Data(String(protoC: e.text?.pointee.text).utf8))
                    }
                }
            }
            let status = await call.status()
            if status.code != .ok { throw RPCError(status.code, status.message) }
        } catch let error as RPCError {
            throw reportFailure(error)
        }
    }
}
