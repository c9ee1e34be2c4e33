// `prism index`: the document index from the command line. `add` uploads files (IndexDocument, with
// a progress bar), `query` asks a question (Query: the streamed answer, then the cited pages; or
// the hits alone with --retrieve-only), `ls` lists indexes or an index's documents, `rm` deletes one.
import ArgumentParser
import Foundation
import NIOCore
import PrismProto
import PrismRPC

struct IndexCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index", abstract: "Add documents to a multi-modal index and ask it questions.",
        subcommands: [IndexAddCommand.self, IndexQueryCommand.self, IndexListCommand.self, IndexRemoveCommand.self])
}

struct IndexAddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add", abstract: "Index PDFs, images, text or Markdown files.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The index (created by its first document).") var index: String
    @Argument(help: "Files to index.") var files: [String]
    @Option(help: "The document id (one file only; default: the server assigns one).") var id: String?
    @Option(help: "The title (one file only; default: the file's name).") var title: String?
    @Option(help: "Seconds before one upload is abandoned (OCR of a long scan takes a while).") var timeout: Int64 = 3600
    @OptionGroup var output: JSONOption

    /// Bytes per data message: well under the server's message limit, small enough for a smooth bar.
    static let chunkBytes = 256 * 1024

    func validate() throws {
        if files.count > 1, id != nil || title != nil { throw ValidationError("--id and --title name one document: give one file") }
    }

    func run() async throws {
        let client = try await connection.connect()
        defer { Task { await client.close() } }
        for file in files {
            let data = try MediaIO.read(file)
            let name = (file as NSString).lastPathComponent
            let call = client.makeCall("/prism.v1.Prism/IndexDocument", metadata: connection.metadata, timeout: .seconds(timeout))
            let b = ProtoBuilder()
            let header = b.message(prism__v1__index_document_header__init)
            header.pointee.index = b.string(index)
            header.pointee.document_id = b.string(id ?? "")
            header.pointee.title = b.string(title ?? (name as NSString).deletingPathExtension)
            header.pointee.mime_type = b.string(Self.textType(name))
            let first = b.message(prism__v1__index_document_request__init)
            first.pointee.payload_case = PRISM__V1__INDEX_DOCUMENT_REQUEST__PAYLOAD_HEADER
            first.pointee.header = header
            var body = ByteBuffer()
            b.pack(first, into: &body)

            let bar = isatty(2) != 0 ? ProgressBar(total: data.count, label: "\(name): uploading") : nil
            let sender = Task {
                try await call.send(body)
                try await call.sendSlices(of: data, sliceBytes: Self.chunkBytes, bar: bar, prism__v1__index_document_request__init) { m, bytes in
                    m.pointee.payload_case = PRISM__V1__INDEX_DOCUMENT_REQUEST__PAYLOAD_DATA
                    m.pointee.data = bytes
                }
                bar?.done()
                FileHandle.standardError.write(Data("\(name): indexing (pages, OCR of scans)...\n".utf8))
                call.end()
            }
            do {
                var reply: ByteBuffer?
                for try await message in call.responses { reply = message }
                _ = try? await sender.value
                let status = await call.status()
                if status.code != .ok { throw RPCError(status.code, "\(name): \(status.message)") }
                guard let reply else { throw RPCError(.internal, "\(name): no response") }
                if output.json {  // one IndexDocumentResponse line per file
                    try JSONOutput.message(prism__v1__index_document_response__init, reply)
                    continue
                }
                let response = try ProtoMessage(prism__v1__index_document_response__init, buffer: reply)
                withExtendedLifetime(response) {
                    let r = response.pointee
                    print("\(name) → \(String(protoC: r.document_id)): \(r.pages) pages, \(r.chunks) chunks, \(r.images) images")
                    for note in UnsafeBufferPointer(start: r.notes, count: r.notes == nil ? 0 : r.n_notes) {
                        print("  note: \(String(protoC: note))")
                    }
                }
            } catch let error as RPCError {
                sender.cancel()
                throw reportFailure(error)
            }
        }
    }

    /// Text files' types by extension (the server sniffs everything else from the bytes).
    static func textType(_ name: String) -> String {
        switch (name as NSString).pathExtension.lowercased() {
        case "md", "markdown": return "text/markdown"
        case "txt", "text": return "text/plain"
        default: return ""
        }
    }
}

struct IndexQueryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "query", abstract: "Ask an index: an answer citing pages, or the hits alone.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The index.") var index: String
    @Argument(help: "The question.") var question: String
    @Flag(help: "Return the retrieved chunks and pages without asking a model (no vendor key needed).") var retrieveOnly = false
    @Option(help: "With --retrieve-only: write the page images into this folder.") var saveImages: String?
    @Option(help: "The answering model, provider/model (default: any capable).") var model: String?
    @Option(help: "Text chunks retrieved (default 5).") var topKText: UInt32 = 0
    @Option(help: "Page images retrieved (default 3).") var topKImages: UInt32 = 0
    @Option(help: "Most tokens in the answer (default: the model's).") var maxTokens: UInt32 = 0
    @Option(help: "Seconds before the call is abandoned.") var timeout: Int64 = 600
    @OptionGroup var output: JSONOption

    func run() async throws {
        let b = ProtoBuilder()
        let q = b.message(prism__v1__query_request__init)
        q.pointee.index = b.string(index)
        q.pointee.question = b.string(question)
        q.pointee.top_k_text = topKText
        q.pointee.top_k_images = topKImages
        q.pointee.max_tokens = maxTokens
        q.pointee.retrieve_only = retrieveOnly ? 1 : 0
        q.pointee.include_images = saveImages != nil ? 1 : 0
        let route = b.message(prism__v1__route__init)
        route.pointee.model = b.string(model ?? "")
        q.pointee.route = route
        var body = ByteBuffer()
        b.pack(q, into: &body)

        let client = try await connection.connect()
        defer { Task { await client.close() } }
        let folder = try saveImages.map { try MediaIO.folder($0) }
        do {
            let call = try await client.serverStreaming("/prism.v1.Prism/Query", body, metadata: connection.metadata, timeout: .seconds(timeout))
            var answer = "", retrieved: [String] = []
            for try await reply in call.responses {
                if output.json {  // page images (--save-images) are base64 in the hits then
                    try JSONOutput.message(prism__v1__generate_event__init, reply)
                    continue
                }
                let event = try ProtoMessage(prism__v1__generate_event__init, buffer: reply)
                try withExtendedLifetime(event) {
                    let e = event.pointee
                    switch e.event_case {
                    case PRISM__V1__GENERATE_EVENT__EVENT_ROUTED:
                        guard let r = e.routed?.pointee else { return }
                        retrieved = UnsafeBufferPointer(start: r.adaptations, count: r.adaptations == nil ? 0 : r.n_adaptations).map { String(protoC: $0) }
                        if !retrieveOnly { FileHandle.standardError.write(Data("routed: \(String(protoC: r.model))\n".utf8)) }
                    case PRISM__V1__GENERATE_EVENT__EVENT_TEXT:
                        let text = String(protoC: e.text?.pointee.text)
                        answer += text
                        FileHandle.standardOutput.write(Data(text.utf8))
                    case PRISM__V1__GENERATE_EVENT__EVENT_HITS:
                        if let hits = e.hits?.pointee { try Self.show(hits, saveTo: folder) }
                    default:
                        break
                    }
                }
            }
            let status = await call.status()
            if status.code != .ok { throw RPCError(status.code, status.message) }
            if !retrieveOnly && !output.json {
                // The pages the answer cites, among those retrieved (labels like "[manual p.3]").
                let cited = retrieved.filter { step in step.split(separator: "[").dropFirst().first.map { answer.contains("[" + $0.prefix { $0 != "]" } + "]") } ?? false }
                print("\n")
                for step in cited.isEmpty ? retrieved : cited { print("\(cited.isEmpty ? "retrieved" : "cited"): \(step)") }
            }
        } catch let error as RPCError {
            throw reportFailure(error)
        }
    }

    /// Prints the hits, best first; writes page images to `folder` when given.
    static func show(_ hits: Prism__V1__QueryHits, saveTo folder: URL?) throws {
        func list(_ array: UnsafeMutablePointer<UnsafeMutablePointer<Prism__V1__QueryHit>?>?, _ count: Int) -> [Prism__V1__QueryHit] {
            UnsafeBufferPointer(start: array, count: array == nil ? 0 : count).compactMap { $0?.pointee }
        }
        func label(_ h: Prism__V1__QueryHit) -> String {
            "[\(String(protoC: h.document_id))\(h.page > 0 ? " p.\(h.page)" : "")] score \(String(format: "%.2f", h.score))"
        }
        for (n, h) in list(hits.text, hits.n_text).enumerated() {
            let heading = String(protoC: h.heading)
            let text = String(protoC: h.text).replacingOccurrences(of: "\n", with: " ")
            print("\(n + 1). \(label(h)) \(String(protoC: h.title))\(heading.isEmpty ? "" : " › " + heading)\n   \(text.prefix(300))\(text.count > 300 ? "..." : "")")
        }
        for h in list(hits.pages, hits.n_pages) {
            var line = "page \(label(h)) \(String(protoC: h.title))"
            if let folder, let image = h.image?.pointee, image.data.len > 0 {
                let url = folder.appendingPathComponent("\(String(protoC: h.document_id))-p\(h.page).jpg")
                try MediaIO.write(Data([UInt8](protoC: image.data)), to: url.path)
                line += " → \(url.path)"
            }
            print(line)
        }
    }
}

struct IndexListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the indexes, or the documents of one.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "An index: list its documents.") var index: String?
    @OptionGroup var output: JSONOption

    func run() async throws {
        let client = try await connection.connect()
        defer { Task { await client.close() } }
        let b = ProtoBuilder()
        do {
            if let index {
                let request = b.message(prism__v1__list_documents_request__init)
                request.pointee.index = b.string(index)
                var body = ByteBuffer()
                b.pack(request, into: &body)
                let wire = try await client.unary("/prism.v1.Prism/ListDocuments", body, metadata: connection.metadata)
                if output.json { return try JSONOutput.message(prism__v1__list_documents_response__init, wire) }
                let reply = try ProtoMessage(prism__v1__list_documents_response__init, buffer: wire)
                withExtendedLifetime(reply) {
                    for d in UnsafeBufferPointer(start: reply.pointee.documents, count: reply.pointee.documents == nil ? 0 : reply.pointee.n_documents).compactMap({ $0?.pointee }) {
                        print("\(String(protoC: d.document_id))\t\(String(protoC: d.title))\t\(String(protoC: d.mime_type))\t\(d.pages) pages\t\(d.chunks) chunks\t\(d.stored_bytes) bytes")
                    }
                }
            } else {
                var body = ByteBuffer()
                b.pack(b.message(prism__v1__list_indexes_request__init), into: &body)
                let wire = try await client.unary("/prism.v1.Prism/ListIndexes", body, metadata: connection.metadata)
                if output.json { return try JSONOutput.message(prism__v1__list_indexes_response__init, wire) }
                let reply = try ProtoMessage(prism__v1__list_indexes_response__init, buffer: wire)
                withExtendedLifetime(reply) {
                    for i in UnsafeBufferPointer(start: reply.pointee.indexes, count: reply.pointee.indexes == nil ? 0 : reply.pointee.n_indexes).compactMap({ $0?.pointee }) {
                        print("\(String(protoC: i.name))\t\(i.documents) documents\t\(i.chunks) chunks\t\(i.stored_bytes) bytes")
                    }
                }
            }
        } catch let error as RPCError {
            throw reportFailure(error)
        }
    }
}

struct IndexRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Delete a document from an index.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The index.") var index: String
    @Argument(help: "The document id.") var documentID: String
    @OptionGroup var output: JSONOption

    func run() async throws {
        let client = try await connection.connect()
        defer { Task { await client.close() } }
        let b = ProtoBuilder()
        let request = b.message(prism__v1__delete_document_request__init)
        request.pointee.index = b.string(index)
        request.pointee.document_id = b.string(documentID)
        var body = ByteBuffer()
        b.pack(request, into: &body)
        do {
            let wire = try await client.unary("/prism.v1.Prism/DeleteDocument", body, metadata: connection.metadata)
            let reply = try ProtoMessage(prism__v1__delete_document_response__init, buffer: wire)
            let deleted = reply.pointee.deleted != 0
            if output.json {
                try JSONOutput.message(prism__v1__delete_document_response__init, wire)
            } else {
                print(deleted ? "deleted \(documentID)" : "\(index) holds no document \(documentID)")
            }
            if !deleted { throw ExitCode(1) }
        } catch let error as RPCError {
            throw reportFailure(error)
        }
    }
}
