// The scheduler's vendor lane: pending items of one batch and model go out as one vendor batch
// (a chunk) through the model's plugin (ABI 1.2), adapted exactly as Generate adapts them; the
// chunk's intent is stored before the vendor call and the vendor's id after it, so a restart never
// sends the same items twice. Due chunks are polled with backoff, and an ended vendor batch's
// results are fetched once and stored with the chunk's end in one transaction.
import Foundation
import PrismProviders
import PrismRPC
import PrismStore

extension BatchScheduler {
    /// Items per chunk: a fifth of OpenAI's 50,000-line file, so one chunk's results stay a
    /// moderate read and a vendor failure costs a part of a large batch, not all of it.
    static let chunkMaxItems = 10_000
    /// Request bytes per chunk (as sent, before fitting): under Gemini's 20 MB inline batch limit,
    /// the smallest of the three vendors'.
    static let chunkMaxBytes = 16 << 20
    /// Polls back off from the first to the longest interval, doubling: a vendor batch takes
    /// minutes to hours, and a poll is one HTTP call.
    static let firstPollSeconds: TimeInterval = 0.5
    static let longestPollSeconds: TimeInterval = 60
    /// The deadline of one vendor batch call (a submit uploads the whole chunk).
    static let vendorCallSeconds: TimeInterval = 300
    /// Chunks polled per pass of the loop.
    static let pollsPerPass = 8

    /// Sends every pending vendor-lane item out, a chunk at a time.
    func sendChunks() async throws {
        while !Task.isCancelled {
            guard let (chunk, items) = try await store.prepareChunk(
                id: UUID().uuidString.lowercased(), owner: owner, maxItems: Self.chunkMaxItems, maxBytes: Self.chunkMaxBytes, now: Date())
            else { return }
            // Not cancelled with the loop: a submit cut midway is the case recovery cannot settle.
            await Task { await self.send(chunk, items) }.value
        }
    }

    /// The id an item carries at the vendor: its position in the batch, never the client's
    /// custom_id (vendors restrict those: Anthropic to 64 characters of [A-Za-z0-9_-]).
    static func vendorItemID(_ seq: Int) -> String { "item-\(seq)" }

    static func seq(ofVendorItemID id: String) -> Int? {
        id.hasPrefix("item-") ? Int(id.dropFirst(5)) : nil
    }

    private func send(_ chunk: VendorChunk, _ items: [ClaimedItem]) async {
        guard let model = batchModel(chunk.model) else {
            logger.warning("batches: \(chunk.model) has no batch API loaded now; its \(items.count) items run through the normal call path")
            do { try await store.moveChunkToLocal(chunk.id) } catch { logger.error("batches: \(error)") }
            return
        }
        var ready: [(customID: String, request: GenerationRequest)] = []
        var failed: [ItemOutcome] = []
        for item in items {
            do {
                let request = try BatchCodec.generationRequest(item.request)
                // Adapted at submit when it had media (BatchService.route); a text-only one is
                // planned for the model here, which changes nothing but checks it still fits.
                let adapted = item.kind == BatchCodec.Kind.adaptedGenerate.rawValue ? request : try await generator.adaptForBatch(request, model: model)
                ready.append((Self.vendorItemID(item.seq), adapted))
            } catch {
                let (code, message) = Self.status(of: error)
                failed.append(ItemOutcome(seq: item.seq, state: .failed, result: BatchCodec.errorResult(item.customID, code: code, message: message)))
            }
        }
        if !failed.isEmpty { await record(chunk.batchID, failed) }
        do {
            guard !ready.isEmpty else {
                try await store.finishChunk(chunk.id, state: .done, outcomes: [], leftover: ItemOutcome(seq: 0, state: .failed, result: nil), now: Date())
                return
            }
            guard try await store.markSubmitting(chunk.id) else {
                signals.notify(chunk.batchID)  // cancelled before anything was sent
                return
            }
        } catch {
            logger.error("batches: chunk \(chunk.id) of batch \(chunk.batchID) not sent: \(error)")
            return
        }
        let name = SQLiteBatchStore.displayName(batchID: chunk.batchID, chunkID: chunk.id, label: chunk.label)
        let status: BatchStatus
        do {
            status = try await generator.host.batchStatus(model: model, action: .submit(items: ready, displayName: name),
                                                          deadline: Date().addingTimeInterval(Self.vendorCallSeconds))
        } catch {
            // Not resubmitted: a failure after the upload may still have created the batch.
            let (code, message) = Self.status(of: error)
            logger.warning("batches: \(model.name) refused vendor batch '\(name)': \(message)")
            let leftover = ItemOutcome(seq: 0, state: .failed, result: nil, errorCode: code.rawValue,
                                       errorMessage: "\(model.name) did not take vendor batch '\(name)': \(message)")
            await retrying("end chunk \(chunk.id)") { try await self.store.finishChunk(chunk.id, state: .failed, outcomes: [], leftover: leftover, now: Date()) }
            signals.notify(chunk.batchID)
            return
        }
        logger.info("batches: \(ready.count) items of batch \(chunk.batchID) sent to \(model.name) as vendor batch \(status.vendorBatchID)")
        await retrying("record vendor batch \(status.vendorBatchID)") {
            try await self.store.recordVendorBatch(chunk.id, vendorBatchID: status.vendorBatchID, nextPoll: Date().addingTimeInterval(Self.firstPollSeconds))
        }
        signals.notify(chunk.batchID)
    }

    /// Polls the chunks whose poll is due.
    func pollDue() async throws {
        // Renewed by the heartbeat while the poll runs; a replica dying mid-poll frees it soon.
        let leaseUntil = Date().addingTimeInterval(leaseSeconds)
        for chunk in try await store.dueChunks(owner: owner, now: Date(), leaseUntil: leaseUntil, limit: Self.pollsPerPass) {
            guard !Task.isCancelled else { return }
            await Task { await self.poll(chunk) }.value
        }
    }

    private func poll(_ chunk: VendorChunk) async {
        guard let vendorID = chunk.vendorBatchID else { return }
        let nextPoll = Date().addingTimeInterval(min(Self.longestPollSeconds, Self.firstPollSeconds * pow(2, Double(chunk.polls + 1))))
        guard let model = batchModel(chunk.model) else {
            logger.warning("batches: \(chunk.model) is not loaded; vendor batch \(vendorID) is polled again later")
            try? await store.reschedulePoll(chunk.id, nextPoll: nextPoll)
            return
        }
        let deadline = Date().addingTimeInterval(Self.vendorCallSeconds)
        do {
            let status: BatchStatus
            if chunk.cancelRequested {
                status = try await generator.host.batchStatus(model: model, action: .cancel(vendorBatchID: vendorID), deadline: deadline)
                try await store.markCancelSent(chunk.id)
            } else {
                status = try await generator.host.batchStatus(model: model, action: .get(vendorBatchID: vendorID), deadline: deadline)
            }
            switch status.state {
            case .running, .cancelling:
                try await store.reschedulePoll(chunk.id, nextPoll: nextPoll)
                return
            case .ended, .cancelled, .expired:
                let results = try await generator.host.batchResults(model: model, vendorBatchID: vendorID, deadline: deadline)
                let outcomes = try await self.outcomes(results, chunk: chunk, model: model)
                let leftover = status.state == .cancelled
                    ? ItemOutcome(seq: 0, state: .cancelled, result: nil, errorCode: StatusCode.cancelled.rawValue, errorMessage: "the batch was cancelled before \(model.name) ran this item")
                    : ItemOutcome(seq: 0, state: .failed, result: nil, errorCode: StatusCode.deadlineExceeded.rawValue,
                                  errorMessage: "vendor batch \(vendorID) ended (\(status.vendorState.isEmpty ? status.state.description : status.vendorState)) without an answer for this item")
                try await store.finishChunk(chunk.id, state: .done, outcomes: outcomes, leftover: leftover, now: Date())
                logger.info("batches: vendor batch \(vendorID) \(status.state): \(outcomes.count) results stored")
            case .failed:
                let leftover = ItemOutcome(seq: 0, state: .failed, result: nil, errorCode: StatusCode.failedPrecondition.rawValue,
                                           errorMessage: "\(model.name) failed vendor batch \(vendorID): \(status.message.isEmpty ? "no reason given" : status.message)")
                try await store.finishChunk(chunk.id, state: .failed, outcomes: [], leftover: leftover, now: Date())
            }
            signals.notify(chunk.batchID)
        } catch let failure as ProviderFailure where failure.code == .invalidArgument {
            // The vendor does not know the batch (any more): polling again cannot help.
            let leftover = ItemOutcome(seq: 0, state: .failed, result: nil, errorCode: StatusCode.failedPrecondition.rawValue,
                                       errorMessage: "\(model.name) no longer knows vendor batch \(vendorID): \(failure.message)")
            await retrying("end chunk \(chunk.id)") { try await self.store.finishChunk(chunk.id, state: .failed, outcomes: [], leftover: leftover, now: Date()) }
            signals.notify(chunk.batchID)
        } catch {
            logger.warning("batches: polling vendor batch \(vendorID) failed: \(error); trying again later")
            try? await store.reschedulePoll(chunk.id, nextPoll: nextPoll)
        }
    }

    /// The item results of an ended vendor batch, priced at the batch price.
    private func outcomes(_ results: [BatchItemResult], chunk: VendorChunk, model: ModelCapability) async throws -> [ItemOutcome] {
        let customIDs = try await store.chunkItems(chunk.id)
        return results.compactMap { result in
            guard let seq = Self.seq(ofVendorItemID: result.customID), let customID = customIDs[seq] else {
                logger.warning("batches: vendor batch of chunk \(chunk.id) answered an item it was not sent: \(result.customID)")
                return nil
            }
            var text = "", usage: Usage?
            for event in result.events {
                switch event {
                case .text(let t): text += t
                case .usage(var u):
                    if u.costUSDMicros == 0 {
                        u.costUSDMicros = u.batchCost(at: model.pricing)
                        u.savedUSDMicros = u.listCost(at: model.pricing) - u.costUSDMicros
                    }
                    usage = u
                default: break
                }
            }
            if result.isOK {
                return ItemOutcome(seq: seq, state: .succeeded, result: BatchCodec.textResult(customID, text: text, usage: usage))
            }
            let code = Self.itemStatus(result.status)
            let state: BatchItemState = code == .cancelled ? .cancelled : .failed
            let message = result.message.isEmpty ? "\(model.name) failed this item" : result.message
            return ItemOutcome(seq: seq, state: state, result: BatchCodec.errorResult(customID, code: code, message: message, usage: usage))
        }
    }

    /// A plugin's prism_status for one item as a gRPC code (prism_status numbers as gRPC does,
    /// but for RATE_LIMITED, and UNAUTHENTICATED meaning the gateway's own key).
    static func itemStatus(_ status: Int32) -> StatusCode {
        switch status {
        case 10: return .unavailable
        case 16: return .failedPrecondition
        default: return StatusCode(rawValue: Int(status)) ?? .unknown
        }
    }

    private func batchModel(_ name: String) -> ModelCapability? {
        generator.host.capabilityMatrix().first { $0.name == name && $0.features.batch }
    }

    /// Retries a store write that must land (what the vendor now holds) until it does or the
    /// process stops (recovery then settles the chunk).
    private func retrying(_ what: String, _ body: @escaping @Sendable () async throws -> Void) async {
        while true {
            do { return try await body() } catch {
                logger.error("batches: cannot \(what): \(error); retrying")
                if Task.isCancelled { return }
                try? await Task.sleep(nanoseconds: UInt64(Self.errorBackoffSeconds * 1_000_000_000))
            }
        }
    }
}
