// The Gemini Batch API for the `gemini` plugin (operation .batch), inline requests only: SUBMIT
// posts every item's GenerateContentRequest (GeminiRequest, media inline) with its custom id as
// metadata.key to models/{m}:batchGenerateContent; GET reads the batch's Operation
// (batches/{id}, metadata.state); CANCEL is batches/{id}:cancel and then a GET; RESULTS reads the
// inlined responses of an ended batch, one BatchItemOutcome per key. An item whose media would
// not fit the inline limit is refused (the Files API is not used for batches).
import Foundation
import PrismPluginKit

struct GeminiBatch {
    let settings: GeminiSettings
    let apiKey: String
    let http: BlockingHTTP
    let call: ProviderCall
    let deadline: Date?

    /// A batch's Operation echoes its inline input (at most the 20 MB inline cap) and holds every
    /// answer once it has ended; far beyond that it is not an answer to read whole.
    static let maxAnswerBytes = 256 * 1024 * 1024
    /// google.rpc.Code as the HTTP status and name Gemini's error bodies carry, for item errors.
    static let rpcCodes: [Int: (http: Int, name: String)] = [
        1: (499, "CANCELLED"), 3: (400, "INVALID_ARGUMENT"), 4: (504, "DEADLINE_EXCEEDED"), 5: (404, "NOT_FOUND"),
        7: (403, "PERMISSION_DENIED"), 8: (429, "RESOURCE_EXHAUSTED"), 9: (400, "FAILED_PRECONDITION"),
        13: (500, "INTERNAL"), 14: (503, "UNAVAILABLE"), 16: (401, "UNAUTHENTICATED"),
    ]

    func serve(_ batch: BatchCall?) throws {
        guard let batch, let action = batch.action else {
            throw CallFailure(.invalidArgument, "gemini: a batch call needs an action (submit, get, results or cancel)")
        }
        switch action {
        case .submit:
            call.batchStatus(try Self.status(exchange(submitRequest(batch), batchID: nil)))
        case .get:
            call.batchStatus(try Self.status(retrieve(batch.vendorBatchID)))
        case .cancel:
            var request = try self.request(path: "/\(Self.checked(batch.vendorBatchID)):cancel")
            request.body = Data("{}".utf8)
            _ = try exchange(request, batchID: batch.vendorBatchID)
            // :cancel answers an empty object: the state comes from the batch itself.
            call.batchStatus(try Self.status(retrieve(batch.vendorBatchID)))
        case .results:
            try results(batch.vendorBatchID)
        }
        if call.isCancelled { throw CallFailure(.cancelled, "cancelled") }
        call.finishOK()
    }

    /// POST models/{m}:batchGenerateContent with the items inline, each keyed by its custom id.
    private func submitRequest(_ batch: BatchCall) throws -> HTTPRequest {
        guard let model = batch.items.first?.request.model else { throw CallFailure(.invalidArgument, "gemini: a batch needs at least one item") }
        if let other = batch.items.first(where: { $0.request.model != model }) {
            throw CallFailure(.invalidArgument, "gemini: a batch runs one model; item '\(other.customID)' asks for \(other.request.model), not \(model)")
        }
        guard !settings.isSpeechModel(model) else { throw CallFailure(.invalidArgument, "gemini model \(model) only synthesizes speech; it has no batches") }
        let limit = settings.inlineLimitBytes
        var payload = JSONBody()
        var requests: [[String: Any]] = []
        var total = 0
        for item in batch.items {
            let size = GeminiFiles.inlineSize(of: item.request)
            guard size <= limit else {
                throw CallFailure(.invalidArgument, "batch item '\(item.customID)' is \(size) bytes inline (text and base64 media), over gemini's "
                                  + "\(limit)-byte inline limit; a batch sends media inline (its media are not uploaded through the Files API)")
            }
            total += size
            do {
                let object = try GeminiRequest.object(for: item.request, files: [:], schemaField: settings.schemaField, payload: &payload)
                requests.append(["request": object, "metadata": ["key": item.customID]])
            } catch var failure as CallFailure {
                failure.message = "batch item '\(item.customID)': \(failure.message)"
                throw failure
            }
        }
        guard total <= limit else {
            throw CallFailure(.invalidArgument, "the batch is \(total) bytes inline, over gemini's \(limit)-byte cap for an inline batch; split it")
        }
        let body: [String: Any] = ["batch": [
            "display_name": batch.displayName.isEmpty ? "prism-batch" : batch.displayName,
            "input_config": ["requests": ["requests": requests]],
        ]]
        var request = try self.request(path: GeminiSettings.modelPath(model, "batchGenerateContent"))
        request.body = try payload.serialize(body)
        return request
    }

    private func retrieve(_ id: String) throws -> JSONValue {
        var request = try self.request(path: "/" + Self.checked(id))
        request.method = "GET"
        return try exchange(request, batchID: id)
    }

    /// The outcome of every item of an ended batch: its inlined responses by key, then the keys of
    /// the batch's input that have none (a cancelled, expired or failed batch) with that reason.
    /// The output is GenerateContentBatchOutput ({"inlinedResponses":{"inlinedResponses":[{"response"
    /// | "error", "metadata"}]}}, in input order) as the Operation's `response` (where Google's curl
    /// example reads it) or `metadata.output`. What a cancelled batch keeps is not documented
    /// (shared/vendor-apis.md has no shape for it): keys without a response take the batch's reason.
    private func results(_ id: String) throws {
        let batch = try retrieve(id)
        let status = try Self.status(batch)
        guard status.state != .running && status.state != .cancelling else {
            throw CallFailure(.failedPrecondition, "gemini batch \(id) is still running (\(status.vendorState)); results come once it has ended")
        }
        let output = batch["response"].flatMap { $0.object != nil ? $0 : nil } ?? batch["metadata"]?["output"]
        let responses = output?["inlinedResponses"]?["inlinedResponses"]?.array ?? []
        if responses.isEmpty, let file = output?["responsesFile"]?.string {
            throw CallFailure(.unimplemented, "gemini put the results of batch \(id) in \(file); this plugin reads inline results only")
        }
        let inputKeys = (batch["metadata"]?["inputConfig"]?["requests"]?["requests"]?.array ?? []).map { $0["metadata"]?["key"]?.string ?? "" }
        var answered = Set<String>()
        for (n, response) in responses.enumerated() {
            let key = response["metadata"]?["key"]?.string ?? (n < inputKeys.count ? inputKeys[n] : String(n))
            answered.insert(key)
            if !call.batchResult(Self.outcome(key: key, response)) { return }
        }
        for key in inputKeys where !key.isEmpty && !answered.contains(key) {
            var outcome = BatchItemOutcome(customID: key)
            switch status.state {
            case .cancelled:
                (outcome.status, outcome.message) = (.cancelled, "the batch was cancelled before gemini ran this request")
            case .expired:
                (outcome.status, outcome.message) = (.deadlineExceeded, "the batch expired before gemini ran this request")
            default:
                (outcome.status, outcome.message) = (.unavailable, "gemini's batch ended (\(status.vendorState)) without an answer for this request")
            }
            if !call.batchResult(outcome) { return }
        }
    }

    /// One InlinedResponse ({"response": GenerateContentResponse} or {"error": Status}) as an outcome,
    /// mapped as the stream maps a streamed answer.
    static func outcome(key: String, _ inlined: JSONValue) -> BatchItemOutcome {
        var outcome = BatchItemOutcome(customID: key)
        if let error = inlined["error"], error.object != nil {
            let code = error["code"]?.int ?? 2
            let message = error["message"]?.string ?? ""
            let (http, name) = rpcCodes[code] ?? (500, "UNKNOWN")
            let body = (try? JSONSerialization.data(withJSONObject: ["error": ["code": http, "message": message, "status": name]])) ?? Data()
            outcome.status = code == 1 ? .cancelled : GeminiErrors.failure(status: http, body: body).status
            outcome.message = "gemini could not run this request (\(name)): \(message)"
            return outcome
        }
        let response = inlined["response"]
        if let u = response?["usageMetadata"], u.object != nil {
            outcome.usage = (u["promptTokenCount"]?.uint64 ?? 0, (u["candidatesTokenCount"]?.uint64 ?? 0) + (u["thoughtsTokenCount"]?.uint64 ?? 0))
        }
        if let blocked = response?["promptFeedback"]?["blockReason"]?.string {
            (outcome.status, outcome.message) = (.invalidArgument, "gemini blocked the prompt (\(blocked))")
            return outcome
        }
        let candidate = response?["candidates"]?[0]
        for part in candidate?["content"]?["parts"]?.array ?? [] where part.object != nil && part["thought"]?.bool != true {
            outcome.text += part["text"]?.string ?? ""
            if let function = part["functionCall"], function.object != nil {
                let args = function["args"].flatMap { $0.object != nil ? $0.jsonText : nil } ?? "{}"
                let id = function["id"]?.string ?? "call_\(outcome.toolCalls.count + 1)"
                outcome.toolCalls.append((id: id, name: function["name"]?.string ?? "", argumentsJSON: args))
            }
            if part["inlineData"] != nil || part["inline_data"] != nil {
                // A batch outcome carries text and tool calls; media output is not passed on.
                (outcome.status, outcome.message) = (.unimplemented, "gemini answered this batch request with media, which batch results do not carry")
                return outcome
            }
        }
        outcome.stopReason = outcome.toolCalls.isEmpty ? GeminiStream.stopReason(candidate?["finishReason"]?.string ?? "STOP") : .toolUse
        return outcome
    }

    /// A batch's Operation as a BatchStatus. The REST API names states BATCH_STATE_*, the SDKs
    /// JOB_STATE_*: both are read.
    static func status(_ operation: JSONValue) throws -> BatchStatus {
        guard let name = operation["name"]?.string, name.hasPrefix("batches/") else {
            throw CallFailure(.unavailable, "gemini answered without a batches/... operation", retryable: true)
        }
        let metadata = operation["metadata"]
        let vendorState = metadata?["state"]?.string ?? ""
        let state: BatchState
        switch vendorState.replacingOccurrences(of: "BATCH_STATE_", with: "").replacingOccurrences(of: "JOB_STATE_", with: "") {
        case "SUCCEEDED": state = .ended
        case "FAILED": state = .failed
        case "CANCELLING": state = .cancelling
        case "CANCELLED": state = .cancelled
        case "EXPIRED": state = .expired
        default: state = .running  // PENDING, RUNNING, and any state added later until it ends
        }
        // int64 counts come as JSON strings in proto JSON.
        func count(_ key: String) -> UInt32 {
            let value = metadata?["batchStats"]?[key]
            return UInt32(clamping: value?.string.flatMap { UInt64($0) } ?? value?.uint64 ?? 0)
        }
        return BatchStatus(vendorBatchID: name, state: state, vendorState: vendorState, total: count("requestCount"),
                           succeeded: count("successfulRequestCount"), failed: count("failedRequestCount"),
                           message: operation["error"]?["message"]?.string ?? "")
    }

    private func request(path: String) throws -> HTTPRequest {
        var request = HTTPRequest(url: settings.baseURL + path)
        request.headers = [("content-type", "application/json"), ("x-goog-api-key", apiKey)]
        request.deadline = deadline
        return request
    }

    /// Runs a short exchange and returns its JSON answer; an error status is a call failure.
    private func exchange(_ request: HTTPRequest, batchID: String?) throws -> JSONValue {
        let head: HTTPResponseHead, body: Data
        do {
            (head, body) = try http.fetch(request, maxBodyBytes: Self.maxAnswerBytes)
        } catch let error as HTTPTransferError {
            throw VendorFailures.failure(for: error, vendor: "gemini", status: 0)
        }
        guard head.status == 200 else {
            // A 404 on a batch's URL means the id is unknown (the caller's mistake).
            if head.status == 404, let batchID { throw CallFailure(.invalidArgument, "gemini has no batch '\(batchID)' (HTTP 404)", httpStatus: 404) }
            throw GeminiErrors.failure(status: head.status, body: body)
        }
        guard let value = try? JSONValue.parse(body), value.object != nil else {
            throw CallFailure(.unavailable, "gemini answered with something that is not a JSON object", retryable: true)
        }
        return value
    }

    /// A batch id as SUBMIT gave it ("batches/..."; the bare id is taken too), kept to one path segment.
    private static func checked(_ id: String) throws -> String {
        let bare = id.hasPrefix("batches/") ? String(id.dropFirst("batches/".count)) : id
        guard !bare.isEmpty, bare.unicodeScalars.allSatisfy({ $0.isASCII && CharacterSet.alphanumerics.contains($0) || $0 == "_" || $0 == "-" }) else {
            throw CallFailure(.invalidArgument, "gemini: '\(id)' is not a batch id")
        }
        return "batches/" + bare
    }
}
