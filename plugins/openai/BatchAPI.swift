// The HTTP calls of OpenAI's Batch API for one plugin call (vendor-apis.md §2 "Batch"): upload the
// JSONL input file (POST /files, purpose=batch), create, retrieve and cancel a batch, and read a
// result file (GET /files/{id}/content) line by line as it arrives, with the call's key, deadline
// and cancellation. Batch.swift decides what to send and what the answers mean.
import Foundation
import PrismPluginKit

struct BatchAPI {
    let settings: OpenAISettings
    let client: BlockingHTTP
    let call: ProviderCall
    let deadline: Date?

    /// A batch or file object is a few KB; a batch's `errors` list can hold one entry per line.
    static let maxObjectBytes = 4 * 1024 * 1024
    /// One line of a result file is one chat completion (or its error): 16 MB is far beyond any.
    static let maxLineBytes = 16 * 1024 * 1024
    /// The input file's name; the vendor wants the .jsonl extension.
    static let inputFilename = "prism-batch.jsonl"

    /// Uploads a batch input file and returns its file id.
    func upload(_ jsonl: Data) throws -> String {
        var form = MultipartForm()
        form.add("purpose", "batch")
        form.addFile("file", filename: Self.inputFilename, contentType: "application/jsonl", data: jsonl)
        let (body, contentType) = form.encoded()
        let file = try object(OpenAIHTTP.request(settings, "/files", contentType: contentType, body: body, deadline: deadline),
                              what: "file upload")
        guard let id = file["id"] as? String, !id.isEmpty else { throw CallFailure(.internalError, "openai's file upload answer has no id") }
        return id
    }

    /// Creates a batch of chat completions from an uploaded file.
    func create(inputFileID: String, metadata: [String: String]) throws -> [String: Any] {
        var json: [String: Any] = ["input_file_id": inputFileID, "endpoint": Batch.endpoint, "completion_window": "24h"]
        if !metadata.isEmpty { json["metadata"] = metadata }
        let body = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys, .withoutEscapingSlashes])
        return try object(OpenAIHTTP.request(settings, "/batches", contentType: "application/json", body: body, deadline: deadline),
                          what: "batch creation")
    }

    /// The batch object of `id`.
    func retrieve(_ id: String) throws -> [String: Any] {
        try object(get("/batches/\(id)"), what: "batch", missing: id)
    }

    /// Asks the vendor to cancel `id`; the answer is the batch, usually `cancelling`.
    func cancel(_ id: String) throws -> [String: Any] {
        try object(OpenAIHTTP.request(settings, "/batches/\(id)/cancel", contentType: "application/json", body: Data(), deadline: deadline),
                   what: "batch cancel", missing: id)
    }

    /// Reads the JSONL file `id` and hands each line to `each`, parsed, as it arrives.
    func lines(ofFile id: String, _ each: (JSONValue) throws -> Void) throws {
        var pending = Data()
        var errorBody = Data()
        var failure: Error?
        var status = 0
        let head: HTTPResponseHead
        do {
            head = try withoutActuallyEscaping(each) { each in
                try client.perform(get("/files/\(id)/content")) { head, chunk in
                    status = head.status
                    guard head.status == 200 else {
                        errorBody += chunk.prefix(max(0, HTTPLimits.maxErrorBodyBytes - errorBody.count))
                        return true
                    }
                    pending += chunk
                    do {
                        try Self.completeLines(of: &pending, each)
                        guard pending.count <= Self.maxLineBytes else {
                            throw CallFailure(.internalError, "openai's batch result file \(id) has a line over \(Self.maxLineBytes) bytes")
                        }
                        return true
                    } catch {
                        failure = error
                        return false
                    }
                }
            }
        } catch let error as HTTPTransferError {
            if let failure { throw failure }
            throw VendorFailures.failure(for: error, vendor: "openai", status: status)
        }
        guard head.status == 200 else { throw missingFile(OpenAIErrors.failure(status: head.status, headers: head.headers, body: errorBody), id) }
        // The last line may lack its newline.
        pending.append(0x0A)
        try Self.completeLines(of: &pending, each)
    }

    /// Hands each complete line of `pending` (blank ones skipped) to `each` and keeps the rest.
    private static func completeLines(of pending: inout Data, _ each: (JSONValue) throws -> Void) throws {
        var start = pending.startIndex
        while let newline = pending[start...].firstIndex(of: 0x0A) {
            let line = pending[start..<newline]
            start = newline + 1
            guard line.contains(where: { $0 != 0x20 && $0 != 0x0D && $0 != 0x09 }) else { continue }
            let value: JSONValue
            do { value = try JSONValue.parse(Data(line)) } catch {
                throw CallFailure(.internalError, "openai's batch result file has a line that is not JSON (\(error))")
            }
            try each(value)
        }
        pending.removeSubrange(pending.startIndex..<start)
    }

    private func get(_ path: String) -> HTTPRequest {
        var http = HTTPRequest(url: settings.baseURL + path)
        http.method = "GET"
        if let key = settings.apiKey { http.headers.append(("Authorization", "Bearer \(key)")) }
        http.deadline = deadline
        return http
    }

    /// A JSON object answer; a 404 for `missing` (a batch id) is the caller's mistake, named.
    private func object(_ request: HTTPRequest, what: String, missing: String? = nil) throws -> [String: Any] {
        do {
            return try OpenAIHTTP.json(client, request, call: call, maxBytes: Self.maxObjectBytes, what: what)
        } catch let failure as CallFailure where failure.httpStatus == 404 && missing != nil {
            throw CallFailure(.invalidArgument, "openai has no batch '\(missing!)' (HTTP 404)", httpStatus: 404)
        }
    }

    private func missingFile(_ failure: CallFailure, _ id: String) -> CallFailure {
        guard failure.httpStatus == 404 else { return failure }
        return CallFailure(.internalError, "openai has no batch result file \(id) (HTTP 404)", httpStatus: 404)
    }
}
