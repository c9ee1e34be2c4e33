// The `batch` operation (ABI 1.2) on OpenAI's Batch API, at half price: SUBMIT writes the items as a
// JSONL file of non-streamed chat completion requests, uploads it and creates the batch; GET and CANCEL
// report the batch's state; RESULTS reads its output and error files, one item outcome per line.
// The HTTP calls are in BatchAPI.swift; the request bodies are ChatRequest's.
import Foundation
import PrismPluginKit

enum Batch {
    /// The endpoint of the batch and the `url` of every line: the vendor's path, not relative to the base URL.
    static let endpoint = "/v1/chat/completions"
    /// The vendor's limits on an input file: 50,000 lines and 200 MB.
    static let maxItems = 50_000
    static let maxFileBytes = 200 * 1000 * 1000
    /// Metadata values are at most 512 characters; a longer display name is cut to fit.
    static let maxDisplayNameCharacters = 512

    /// Runs one batch action and finishes the call.
    static func serve(_ request: ProviderRequest, settings: OpenAISettings, client: BlockingHTTP, call: ProviderCall) throws {
        guard let batch = request.batch, let action = batch.action else {
            throw CallFailure(.invalidArgument, "the openai batch call names no known action (submit, get, results or cancel)")
        }
        let api = BatchAPI(settings: settings, client: client, call: call, deadline: request.deadline)
        switch action {
        case .submit:
            try emit(submit(batch, api: api), call: call)
        case .get:
            try emit(status(of: api.retrieve(checkedID(batch.vendorBatchID))), call: call)
        case .cancel:
            try emit(status(of: api.cancel(checkedID(batch.vendorBatchID))), call: call)
        case .results:
            try results(checkedID(batch.vendorBatchID), api: api, call: call)
        }
        call.finishOK()
    }

    /// Uploads the items and creates the batch; its first status.
    static func submit(_ batch: BatchCall, api: BatchAPI) throws -> BatchStatus {
        let file = try jsonl(batch.items)
        let fileID = try api.upload(file)
        let name = String(batch.displayName.prefix(maxDisplayNameCharacters))
        var first = try status(of: api.create(inputFileID: fileID, metadata: name.isEmpty ? [:] : ["description": name]))
        // The vendor counts the lines only once it has read them.
        if first.total == 0 { first.total = UInt32(batch.items.count) }
        api.call.log(.info, "openai: batch \(first.vendorBatchID) of \(batch.items.count) requests from \(fileID) (\(file.count) bytes)")
        return first
    }

    /// The input file: per item one line {"custom_id","method","url","body"}, the body as a
    /// streamed call's but with "stream": false. Custom ids must be present and unique.
    static func jsonl(_ items: [BatchItem]) throws -> Data {
        guard !items.isEmpty else { throw CallFailure(.invalidArgument, "an openai batch needs at least one request") }
        guard items.count <= maxItems else {
            throw CallFailure(.resourceExhausted, "an openai batch takes at most \(maxItems) requests; this one has \(items.count)")
        }
        var file = Data()
        var seen = Set<String>()
        for item in items {
            guard !item.customID.isEmpty else { throw CallFailure(.invalidArgument, "a batch request has an empty custom_id") }
            guard seen.insert(item.customID).inserted else {
                throw CallFailure(.invalidArgument, "the custom_id '\(item.customID)' is used twice in the batch")
            }
            let body: Data
            do { body = try ChatRequest.body(for: item.request, stream: false) } catch let failure as CallFailure {
                throw CallFailure(failure.status, "batch request '\(item.customID)': \(failure.message)")
            }
            // The head's closing brace gives way to the body, which is already JSON.
            let head = try JSONSerialization.data(withJSONObject: ["custom_id": item.customID, "method": "POST", "url": endpoint],
                                                  options: [.sortedKeys, .withoutEscapingSlashes])
            file += head.dropLast()
            file += Data(",\"body\":".utf8)
            file += body
            file += Data("}\n".utf8)
            guard file.count <= maxFileBytes else {
                throw CallFailure(.resourceExhausted, "an openai batch file is limited to \(maxFileBytes) bytes; this batch is larger")
            }
        }
        return file
    }

    /// A batch object as a BatchStatus.
    static func status(of batch: [String: Any]) throws -> BatchStatus {
        guard let id = batch["id"] as? String, let vendorState = batch["status"] as? String else {
            throw CallFailure(.internalError, "openai's batch answer has no id or status")
        }
        let counts = batch["request_counts"] as? [String: Any]
        let total = OpenAIHTTP.number(counts?["total"]), completed = OpenAIHTTP.number(counts?["completed"])
        let failed = OpenAIHTTP.number(counts?["failed"])
        let state = state(vendorState)
        // Lines that never ran: the vendor counts them in the total only.
        let unrun = UInt32(clamping: total - min(total, completed + failed))
        var message = ""
        if state == .failed {
            let errors = (batch["errors"] as? [String: Any])?["data"] as? [[String: Any]] ?? []
            message = errors.map { error in
                let text = error["message"] as? String ?? "error"
                return (error["line"] as? NSNumber).map { "line \($0): \(text)" } ?? text
            }.joined(separator: "; ")
            if message.isEmpty { message = "openai failed the batch without saying why" }
        }
        return BatchStatus(vendorBatchID: id, state: state, vendorState: vendorState, total: UInt32(clamping: total),
                           succeeded: UInt32(clamping: completed), failed: UInt32(clamping: failed),
                           cancelled: state == .cancelled ? unrun : 0, expired: state == .expired ? unrun : 0, message: message)
    }

    /// The vendor's status as a BatchState; a status added later reads as still running.
    static func state(_ vendorState: String) -> BatchState {
        switch vendorState {
        case "completed": return .ended
        case "cancelling": return .cancelling
        case "cancelled": return .cancelled
        case "failed": return .failed
        case "expired": return .expired
        default: return .running  // validating, in_progress, finalizing
        }
    }

    /// Emits one outcome per line of the output file, then of the error file, of an ended batch.
    static func results(_ id: String, api: BatchAPI, call: ProviderCall) throws {
        let batch = try api.retrieve(id)
        let current = try status(of: batch)
        switch current.state {
        case .ended, .cancelled, .expired:
            break
        case .failed:
            throw CallFailure(.failedPrecondition, "openai batch \(id) failed and has no results: \(current.message)")
        default:
            throw CallFailure(.failedPrecondition, "openai batch \(id) is still \(current.vendorState)")
        }
        for key in ["output_file_id", "error_file_id"] {
            guard let file = batch[key] as? String, !file.isEmpty else { continue }
            try api.lines(ofFile: try checkedID(file)) { line in
                guard call.batchResult(try outcome(of: line)) else { throw CallFailure(.cancelled, "cancelled") }
            }
        }
    }

    /// One line of a result file as its item's outcome: the answer of a 200, or the failure of
    /// another status (mapped as the vendor's HTTP errors are) or of a request that never ran.
    /// Only a line without a custom_id, which belongs to no item, fails the whole call.
    static func outcome(of line: JSONValue) throws -> BatchItemOutcome {
        guard let customID = line["custom_id"]?.string else {
            throw CallFailure(.internalError, "openai's batch result line has no custom_id")
        }
        var outcome = BatchItemOutcome(customID: customID)
        if let error = line["error"], error.object != nil {
            let code = error["code"]?.string ?? ""
            outcome.status = code == "batch_cancelled" ? .cancelled : code == "batch_expired" ? .deadlineExceeded : .unknown
            outcome.message = "openai did not run this request (\(code.isEmpty ? "no code" : code)): \(error["message"]?.string ?? "")"
            return outcome
        }
        // A line that cannot be read is its item's failure; the other items still have their answers.
        guard let response = line["response"], response.object != nil, let statusCode = response["status_code"]?.int else {
            outcome.status = .internalError
            outcome.message = "openai's batch result line for '\(customID)' has neither a response nor an error"
            return outcome
        }
        let body = response["body"]
        guard statusCode == 200 else {
            let failure = OpenAIErrors.failure(status: statusCode, headers: [:], body: Data((body?.jsonText ?? "").utf8))
            outcome.status = failure.status
            outcome.message = failure.message
            return outcome
        }
        guard let choice = body?["choices"]?[0], let message = choice["message"], message.object != nil else {
            outcome.status = .internalError
            outcome.message = "openai's batch answer for '\(customID)' has no choices[0].message"
            return outcome
        }
        outcome.text = message["content"]?.string ?? ""
        outcome.toolCalls = (message["tool_calls"]?.array ?? []).map { tool in
            let function = tool["function"]
            let arguments = function?["arguments"]?.string ?? ""
            return (tool["id"]?.string ?? "", function?["name"]?.string ?? "", arguments.isEmpty ? "{}" : arguments)
        }
        if let usage = body?["usage"], usage.object != nil {
            outcome.usage = (usage["prompt_tokens"]?.uint64 ?? 0, usage["completion_tokens"]?.uint64 ?? 0)
        }
        outcome.stopReason = ChatStream.stopReason(choice["finish_reason"]?.string)
        return outcome
    }

    /// What the vendor's ids ("batch_…", "file-…") are made of.
    static let idCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")

    /// A vendor id checked before it goes into a URL path: letters, digits, '_' and '-' only.
    static func checkedID(_ id: String) throws -> String {
        guard !id.isEmpty else { throw CallFailure(.invalidArgument, "the openai batch call needs a vendor batch id") }
        guard id.allSatisfy(idCharacters.contains) else {
            throw CallFailure(.invalidArgument, "'\(id)' is not an openai batch or file id")
        }
        return id
    }

    private static func emit(_ status: BatchStatus, call: ProviderCall) throws {
        guard call.batchStatus(status) else { throw CallFailure(.cancelled, "cancelled") }
    }
}
