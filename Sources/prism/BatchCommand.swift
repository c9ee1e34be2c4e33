// `prism batch`: submit a JSONL file of requests as one durable batch (SubmitBatch), show a batch's
// state and counts (GetBatch), print its results as JSONL as they finish (StreamBatchResults), and
// cancel it; `submit --wait` shows a progress line until the batch has finished.
import ArgumentParser
import Foundation
import NIOCore
import PrismProto
import PrismRPC

struct BatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch", abstract: "Durable batches: submit a JSONL file, follow it, read its results.",
        subcommands: [Submit.self, Status.self, Results.self, Cancel.self])

    /// Seconds between two looks at a batch while waiting.
    static let pollSeconds: UInt64 = 1

    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Submit FILE.jsonl (one request per line; see `prism batch submit --help`) as one batch; prints its id.",
            discussion: "Each line is a BatchItem in proto3 JSON, {\"custom_id\": \"a1\", \"generate\": {...}} or \"extract\": {...}; "
                + "or a GenerateRequest with its custom_id beside its fields: {\"custom_id\": \"a1\", \"model\": \"openai/gpt-4o\", "
                + "\"max_tokens\": 200, \"messages\": [{\"role\": \"ROLE_USER\", \"parts\": [{\"text\": \"...\"}]}]}.")

        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The JSONL file of requests.") var file: String
        @Option(help: "A label for the batch.") var label: String?
        @Flag(help: "Wait until the batch has finished, showing its progress.") var wait = false
        @OptionGroup var output: JSONOption

        func run() async throws {
            let b = ProtoBuilder()
            let text = String(decoding: try MediaIO.read(file), as: UTF8.self)
            var items: [ProtoMessage<Prism__V1__BatchItem>] = []
            for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                do {
                    items.append(try BatchLines.item(String(line), number: index + 1))
                } catch let error as BatchLines.LineError {
                    throw ValidationError("\(file): \(error.description)")
                }
            }
            let request = b.message(prism__v1__submit_batch_request__init)
            request.pointee.n_items = items.count
            request.pointee.items = b.array(items.map(\.pointer))
            request.pointee.label = b.string(label ?? "")
            var body = ByteBuffer()
            withExtendedLifetime(items) { b.pack(request, into: &body) }

            try await BatchView.calling(connection) { client in
                let batch = try await BatchView(client.unary("/prism.v1.Prism/SubmitBatch", body, metadata: connection.metadata, timeout: .seconds(600)))
                if !output.json { print(batch.id) } else if !wait { try batch.show(json: true) }
                FileHandle.standardError.write(Data("submitted \(batch.total) requests as \(batch.id)\n".utf8))
                if wait { try await BatchView.wait(batch.id, client: client, connection: connection, json: output.json) }
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a batch's state, counts and vendor batch ids.")

        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The batch id SubmitBatch gave.") var id: String
        @Flag(help: "Wait until the batch has finished, showing its progress.") var wait = false
        @OptionGroup var output: JSONOption

        func run() async throws {
            try await BatchView.calling(connection) { client in
                let batch = try await BatchView.get(id, path: "GetBatch", client: client, connection: connection)
                if wait && !batch.finished {
                    try await BatchView.wait(id, client: client, connection: connection, json: output.json)
                } else {
                    try batch.show(json: output.json)
                }
            }
        }
    }

    struct Results: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a batch's results as JSONL (one BatchResult a line), as they finish; ends when the batch has.")

        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The batch id SubmitBatch gave.") var id: String
        // Accepted for uniformity: the results are JSON lines either way.
        @OptionGroup var output: JSONOption

        func run() async throws {
            try await BatchView.calling(connection) { client in
                let call = try await client.serverStreaming("/prism.v1.Prism/StreamBatchResults", BatchView.request(id), metadata: connection.metadata)
                for try await reply in call.responses { print(try BatchLines.json(Array(reply.readableBytesView))) }
                let status = await call.status()
                if status.code != .ok { throw RPCError(status.code, status.message) }
            }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel what has not run of a batch (and its vendor batches).")

        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The batch id SubmitBatch gave.") var id: String
        @OptionGroup var output: JSONOption

        func run() async throws {
            try await BatchView.calling(connection) { client in
                try await BatchView.get(id, path: "CancelBatch", client: client, connection: connection).show(json: output.json)
            }
        }
    }
}

/// A prism.v1.Batch as the CLI shows it.
struct BatchView {
    var id = "", state = "", total = 0, succeeded = 0, failed = 0, cancelled = 0
    var vendorBatchIDs: [String] = []
    /// The Batch message as received, for --json.
    let wire: ByteBuffer

    init(_ buffer: ByteBuffer) throws {
        wire = buffer
        let batch = try ProtoMessage(prism__v1__batch__init, buffer: buffer)
        withExtendedLifetime(batch) {
            let b = batch.pointee
            id = String(protoC: b.id)
            state = ["UNSPECIFIED", "QUEUED", "RUNNING", "DONE", "CANCELLED", "FAILED"][min(Int(b.state.rawValue), 5)]
            (total, succeeded, failed, cancelled) = (Int(b.total), Int(b.succeeded), Int(b.failed), Int(b.cancelled))
            vendorBatchIDs = UnsafeBufferPointer(start: b.vendor_batch_ids, count: b.vendor_batch_ids == nil ? 0 : b.n_vendor_batch_ids).map { String(protoC: $0) }
        }
    }

    /// The summary line, or with `json` the Batch message as proto3 JSON.
    func show(json: Bool) throws {
        if json { try JSONOutput.message(prism__v1__batch__init, wire) } else { print(summary) }
    }

    var finished: Bool { ["DONE", "CANCELLED", "FAILED"].contains(state) }

    var summary: String {
        "\(id) \(state): \(succeeded + failed + cancelled)/\(total) finished (\(succeeded) succeeded, \(failed) failed, \(cancelled) cancelled)"
            + (vendorBatchIDs.isEmpty ? "" : "; vendor batches \(vendorBatchIDs.joined(separator: ", "))")
    }

    /// A progress bar of `width` cells for the finished share.
    func bar(width: Int = 30) -> String {
        let done = total == 0 ? width : width * (succeeded + failed + cancelled) / total
        return "[" + String(repeating: "#", count: done) + String(repeating: ".", count: width - done) + "]"
    }

    /// Connects, runs `body` and closes; an RPC failure is printed and exits non-zero.
    static func calling(_ connection: ConnectionOptions, _ body: (RPCClient) async throws -> Void) async throws {
        let client = try await connection.connect()
        defer { Task { await client.close() } }
        do {
            try await body(client)
        } catch let error as RPCError {
            throw reportFailure(error)
        }
    }

    static func request(_ id: String) -> ByteBuffer {
        let b = ProtoBuilder()
        let request = b.message(prism__v1__get_batch_request__init)
        request.pointee.id = b.string(id)
        var body = ByteBuffer()
        b.pack(request, into: &body)
        return body
    }

    static func get(_ id: String, path: String, client: RPCClient, connection: ConnectionOptions) async throws -> BatchView {
        try BatchView(try await client.unary("/prism.v1.Prism/\(path)", request(id), metadata: connection.metadata, timeout: .seconds(60)))
    }

    /// Shows a progress line on stderr until the batch has finished (redrawn in place on a
    /// terminal, a new line per change otherwise), then its summary on stdout.
    static func wait(_ id: String, client: RPCClient, connection: ConnectionOptions, json: Bool) async throws {
        let terminal = isatty(STDERR_FILENO) == 1
        var last = ""
        while true {
            let batch = try await get(id, path: "GetBatch", client: client, connection: connection)
            let line = "\(batch.bar()) \(batch.succeeded + batch.failed + batch.cancelled)/\(batch.total) \(batch.state.lowercased())"
            if line != last {
                FileHandle.standardError.write(Data((terminal ? "\r\(line)" : "\(line)\n").utf8))
                last = line
            }
            if batch.finished {
                if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
                try batch.show(json: json)
                return
            }
            try await Task.sleep(nanoseconds: BatchCommand.pollSeconds * 1_000_000_000)
        }
    }
}
