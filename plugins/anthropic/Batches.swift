// Message Batches for the `anthropic` plugin (operation .batch): SUBMIT posts every item's Messages
// params (MessagesRequest without "stream") to /v1/messages/batches; GET and CANCEL map the
// MessageBatch object to a BatchStatus; RESULTS reads the JSONL at the batch's results_url once it
// has ended, one BatchItemOutcome per line, as the Anthropic SDK does (retrieve, then results_url).
import Foundation
import PrismPluginKit

struct AnthropicBatches {
    let baseURL: String
    let apiKey: String
    let http: BlockingHTTP
    let call: ProviderCall
    let deadline: Date?

    /// A MessageBatch object is well under a kilobyte; anything far larger is not one.
    static let maxAnswerBytes = 1024 * 1024
    /// One results line holds one whole Message: 32 MB is the Messages request cap, far above any answer.
    static let maxResultLineBytes = 32 * 1024 * 1024

    func serve(_ batch: BatchCall?) throws {
        guard let batch, let action = batch.action else {
            throw CallFailure(.invalidArgument, "anthropic: a batch call needs an action (submit, get, results or cancel)")
        }
        switch action {
        case .submit:
            call.batchStatus(try Self.status(exchange(submitRequest(batch), batchID: nil)))
        case .get:
            call.batchStatus(try Self.status(retrieve(batch.vendorBatchID)))
        case .cancel:
            var request = try self.request(path: "/v1/messages/batches/\(Self.checked(batch.vendorBatchID))/cancel")
            request.body = Data("{}".utf8)
            call.batchStatus(try Self.status(exchange(request, batchID: batch.vendorBatchID)))
        case .results:
            try results(batch.vendorBatchID)
        }
        if call.isCancelled { throw CallFailure(.cancelled, "cancelled") }
        call.finishOK()
    }

    /// POST /v1/messages/batches with {"requests":[{"custom_id","params"}]}; the media of every
    /// item are spliced in as base64 by one JSONBody.
    private func submitRequest(_ batch: BatchCall) throws -> HTTPRequest {
        guard !batch.items.isEmpty else { throw CallFailure(.invalidArgument, "anthropic: a batch needs at least one item") }
        var payload = JSONBody()
        var requests: [[String: Any]] = []
        for item in batch.items {
            do {
                requests.append(["custom_id": item.customID, "params": try MessagesRequest.params(for: item.request, stream: false, payload: &payload)])
            } catch var failure as CallFailure {
                failure.message = "batch item '\(item.customID)': \(failure.message)"
                throw failure
            }
        }
        var request = try self.request(path: "/v1/messages/batches")
        request.body = try payload.serialize(["requests": requests])
        return request
    }

    private func retrieve(_ id: String) throws -> JSONValue {
        var request = try self.request(path: "/v1/messages/batches/\(Self.checked(id))")
        request.method = "GET"
        return try exchange(request, batchID: id)
    }

    /// The results of an ended batch, streamed line by line from results_url.
    private func results(_ id: String) throws {
        let batch = try retrieve(id)
        let status = try Self.status(batch)
        guard status.state != .running && status.state != .cancelling else {
            throw CallFailure(.failedPrecondition, "anthropic message batch \(id) is still running (\(status.vendorState)); results come once it has ended")
        }
        // The key goes with the request, so a results_url is followed only on the API's own origin.
        let ownResults = baseURL + "/v1/messages/batches/\(id)/results"
        let resultsURL = batch["results_url"]?.string.flatMap { $0.hasPrefix(baseURL + "/") ? $0 : nil } ?? ownResults
        var request = HTTPRequest(url: resultsURL)
        request.method = "GET"
        request.headers = headers
        request.deadline = deadline
        var lines = Data()
        var errorBody = Data()
        var failure: CallFailure?
        let head: HTTPResponseHead
        do {
            head = try http.perform(request) { head, chunk in
                guard head.status == 200 else {
                    errorBody += chunk.prefix(max(0, HTTPLimits.maxErrorBodyBytes - errorBody.count))
                    return true
                }
                lines += chunk
                while let end = lines.firstIndex(of: 0x0A) {
                    let line = lines[lines.startIndex..<end]
                    lines = lines[(end + 1)...]
                    if !emit(line, failure: &failure) { return false }
                }
                if lines.count > Self.maxResultLineBytes {
                    failure = CallFailure(.unavailable, "anthropic sent a results line over \(Self.maxResultLineBytes) bytes")
                    return false
                }
                return true
            }
        } catch let error as HTTPTransferError {
            throw failure ?? VendorFailures.failure(for: error, vendor: "anthropic", status: 0)
        }
        guard head.status == 200 else { throw Self.failure(head, errorBody, batchID: id) }
        if !emit(lines, failure: &failure), let failure { throw failure }
    }

    /// Emits one results line (blank lines skipped); false to stop, with `failure` set if the line was bad.
    private func emit(_ line: Data, failure: inout CallFailure?) -> Bool {
        guard line.contains(where: { $0 > 0x20 }) else { return true }
        guard let value = try? JSONValue.parse(line), value.object != nil else {
            failure = CallFailure(.unavailable, "anthropic sent a results line that is not a JSON object", retryable: true)
            return false
        }
        return call.batchResult(Self.outcome(value))
    }

    /// One line {"custom_id","result":{type: succeeded | errored | canceled | expired}} as an outcome.
    static func outcome(_ line: JSONValue) -> BatchItemOutcome {
        var outcome = BatchItemOutcome(customID: line["custom_id"]?.string ?? "")
        let result = line["result"]
        switch result?["type"]?.string {
        case "succeeded":
            let message = result?["message"]
            var answeredBySchemaTool = false
            for block in message?["content"]?.array ?? [] {
                switch block["type"]?.string {
                case "text":
                    outcome.text += block["text"]?.string ?? ""
                case "tool_use":
                    let input = block["input"].flatMap { $0.object != nil ? $0.jsonText : nil } ?? "{}"
                    let name = block["name"]?.string ?? ""
                    if SchemaTool.isAnswer(name) {
                        outcome.text += SchemaTool.answer(toolName: name, inputJSON: input)
                        answeredBySchemaTool = true
                    } else {
                        outcome.toolCalls.append((id: block["id"]?.string ?? "", name: name, argumentsJSON: input))
                    }
                default:
                    break  // thinking blocks are not passed on, as in the stream
                }
            }
            if let usage = message?["usage"], usage.object != nil {
                outcome.usage = (usage["input_tokens"]?.uint64 ?? 0, usage["output_tokens"]?.uint64 ?? 0)
            }
            let stop = message?["stop_reason"]?.string
            outcome.stopReason = answeredBySchemaTool && stop == "tool_use" ? .endTurn : MessagesStream.stopReason(stop)
        case "errored":
            // {"type":"error","error":{"type","message"}}: the status its type stands for, the vendor's message.
            let error = result?["error"]?["error"]
            let kind = error?["type"]?.string ?? "api_error"
            let body = Data(#"{"error":\#(error?.jsonText ?? "{}")}"#.utf8)
            outcome.status = AnthropicErrors.failure(status: AnthropicErrors.httpStatus(ofType: kind), headers: [:], body: body).status
            outcome.message = "anthropic could not run this request (\(kind)): \(error?["message"]?.string ?? "")"
        case "canceled":
            outcome.status = .cancelled
            outcome.message = "the batch was cancelled before anthropic ran this request"
        case "expired":
            outcome.status = .deadlineExceeded
            outcome.message = "the batch expired (24 h) before anthropic ran this request"
        case let other:
            outcome.status = .unknown
            outcome.message = "anthropic gave an unknown result type '\(other ?? "")'"
        }
        return outcome
    }

    /// A MessageBatch as a BatchStatus. "ended" after a cancel is CANCELLED (the finished items
    /// still have results); ended with every item expired is EXPIRED.
    static func status(_ batch: JSONValue) throws -> BatchStatus {
        guard batch["type"]?.string == "message_batch", let id = batch["id"]?.string, let vendorState = batch["processing_status"]?.string else {
            throw CallFailure(.unavailable, "anthropic answered without a message_batch object", retryable: true)
        }
        let counts = batch["request_counts"]
        func count(_ name: String) -> UInt32 { UInt32(clamping: counts?[name]?.uint64 ?? 0) }
        let (succeeded, errored, canceled, expired) = (count("succeeded"), count("errored"), count("canceled"), count("expired"))
        let total = count("processing") + succeeded + errored + canceled + expired
        let state: BatchState
        switch vendorState {
        case "canceling": state = .cancelling
        case "ended" where batch["cancel_initiated_at"]?.string != nil: state = .cancelled
        case "ended" where total > 0 && expired == total: state = .expired
        case "ended": state = .ended
        default: state = .running  // in_progress, and any state added later until it ends
        }
        return BatchStatus(vendorBatchID: id, state: state, vendorState: vendorState, total: total, succeeded: succeeded,
                           failed: errored, cancelled: canceled, expired: expired)
    }

    private var headers: [(String, String)] {
        [("content-type", "application/json"), ("anthropic-version", AnthropicDefaults.version), ("x-api-key", apiKey)]
    }

    private func request(path: String) throws -> HTTPRequest {
        var request = HTTPRequest(url: baseURL + path)
        request.headers = headers
        request.deadline = deadline
        return request
    }

    /// Runs a short exchange and returns its JSON answer; an error status is a call failure.
    private func exchange(_ request: HTTPRequest, batchID: String?) throws -> JSONValue {
        let head: HTTPResponseHead, body: Data
        do {
            (head, body) = try http.fetch(request, maxBodyBytes: Self.maxAnswerBytes)
        } catch let error as HTTPTransferError {
            throw VendorFailures.failure(for: error, vendor: "anthropic", status: 0)
        }
        guard head.status == 200 else { throw Self.failure(head, body, batchID: batchID) }
        guard let value = try? JSONValue.parse(body), value.object != nil else {
            throw CallFailure(.unavailable, "anthropic answered with something that is not a JSON object", retryable: true)
        }
        return value
    }

    /// A 404 on a batch's URL means the id is unknown (the caller's mistake); the rest as for Messages.
    private static func failure(_ head: HTTPResponseHead, _ body: Data, batchID: String?) -> CallFailure {
        let failure = AnthropicErrors.failure(status: head.status, headers: head.headers, body: body)
        guard head.status == 404, let batchID else { return failure }
        return CallFailure(.invalidArgument, "anthropic has no message batch '\(batchID)' (HTTP 404)", httpStatus: 404)
    }

    /// A batch id as given at SUBMIT ("msgbatch_..."): letters, digits, '_' and '-', so it stays one path segment.
    private static func checked(_ id: String) throws -> String {
        guard !id.isEmpty, id.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) && $0.isASCII || $0 == "_" || $0 == "-" }) else {
            throw CallFailure(.invalidArgument, "anthropic: '\(id)' is not a message batch id")
        }
        return id
    }
}
