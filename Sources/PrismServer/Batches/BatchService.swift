// prism.v1.Prism's batch RPCs: SubmitBatch stores every item (each checked as its own RPC would
// check it, routed to the model the planner picks now, and adapted for it when it goes to a
// vendor batch) in one durable transaction before it answers; GetBatch and CancelBatch read and change the stored batch; StreamBatchResults sends
// each finished item once, in completion order, waking on BatchSignals while the batch runs.
import Foundation
import NIOCore
import PrismProto
import PrismProviders
import PrismRPC
import PrismStore

struct BatchService {
    let store: any BatchStore
    let generator: Generator
    let signals: BatchSignals

    /// Results read from the store per query while streaming.
    static let resultsPerRead = 500
    /// Longest a stream waits for a signal before looking at the store again (a batch changed by
    /// another process signals nobody here).
    static let streamWakeSeconds: TimeInterval = 5

    func register(in service: inout ServiceDefinition) {
        service.add("SubmitBatch", .unary { body, _ in try await submit(body) })
        service.add("GetBatch", .unary { body, _ in BatchCodec.batch(try await record(try Self.id(body))) })
        service.add("CancelBatch", .unary { body, _ in try await cancel(try Self.id(body)) })
        service.add("StreamBatchResults", .serverStreaming { body, _, writer in
            try await stream(try Self.id(body)) { try await writer.write($0) }
        })
    }

    private func submit(_ body: ByteBuffer) async throws -> ByteBuffer {
        let message = try decodeRequest(prism__v1__submit_batch_request__init, body)
        let (items, label) = try withExtendedLifetime(message) {
            (try BatchCodec.items(message.pointee), String(protoC: message.pointee.label))
        }
        var rows: [NewBatchItem] = []
        rows.reserveCapacity(items.count)
        for item in items { rows.append(await route(item)) }
        // Items run later, outside this call: the key's allow-list is applied now, to the model each was routed to.
        if let caller = Caller.current {
            for (item, row) in zip(items, rows) where !row.model.isEmpty && !caller.models.permits(row.model) {
                throw RPCError(.permissionDenied, "item '\(item.customID)': API key '\(caller.keyName)' may not use model \(row.model) (its models: \(caller.models.patterns.joined(separator: ", ")))")
            }
        }
        let id = "batch_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let record = try await storeCall { try await store.createBatch(id: id, label: label, items: rows, now: Date()) }
        signals.notify(BatchSignals.work)
        return BatchCodec.batch(record)
    }

    /// Where an item runs, and what is stored of it. It goes to the model the planner picks now;
    /// one the planner cannot place runs (and fails, with Generate's own status) on the normal
    /// path. A Generate item for a model with a batch API goes to the vendor lane, its media
    /// fetched and fitted now for that model (stored so, a restart never redoes it); one whose
    /// media cannot be made to fit goes to the normal path, where Generate's fallbacks may serve it.
    private func route(_ item: BatchCodec.Item) async -> NewBatchItem {
        var row = NewBatchItem(customID: item.customID, kind: item.kind.rawValue, request: item.encoded, model: "", lane: .local)
        guard item.kind == .generate else {
            row.model = (try? await generator.firstChoice(for: item.request))?.name ?? ""
            return row
        }
        var request = item.request
        if let resolved = try? await generator.fetcher.resolve(request).request { request = resolved }
        guard let model = try? await generator.firstChoice(for: request) else { return row }
        row.model = model.name
        guard model.features.batch else { return row }
        if !AdaptedRequest.hasMedia(request) {
            row.lane = .vendor
        } else if let adapted = try? await generator.adaptForBatch(request, model: model) {
            row.lane = .vendor
            row.kind = BatchCodec.Kind.adaptedGenerate.rawValue
            row.request = AdaptedRequest.encode(adapted, model: model.name)
        }
        return row
    }

    private func record(_ id: String) async throws -> BatchRecord {
        guard let record = try await storeCall({ try await store.batch(id) }) else {
            throw RPCError(.notFound, "no batch '\(id)' (finished batches are removed after the retention time)")
        }
        return record
    }

    private func cancel(_ id: String) async throws -> ByteBuffer {
        guard let record = try await storeCall({ try await store.cancelBatch(id, now: Date()) }) else {
            throw RPCError(.notFound, "no batch '\(id)'")
        }
        // The scheduler asks the vendors to cancel; streams see the cancelled items.
        signals.notify(BatchSignals.work)
        signals.notify(id)
        return BatchCodec.batch(record)
    }

    private func stream(_ id: String, _ send: (ByteBuffer) async throws -> Void) async throws {
        var last: Int64 = 0
        _ = try await record(id)
        while true {
            let seen = signals.version(id)
            let items = try await storeCall { try await store.finishedItems(of: id, after: last, limit: Self.resultsPerRead) }
            for item in items { try await send(BatchCodec.result(item)) }
            last = items.last?.order ?? last
            if items.count == Self.resultsPerRead { continue }
            // Finished means every result is stored (the last ones commit with the state): read
            // what landed since the look above, then end.
            if try await record(id).state.isFinished {
                while true {
                    let rest = try await storeCall { try await store.finishedItems(of: id, after: last, limit: Self.resultsPerRead) }
                    for item in rest { try await send(BatchCodec.result(item)) }
                    guard let end = rest.last?.order, rest.count == Self.resultsPerRead else { return }
                    last = end
                }
            }
            try Task.checkCancellation()
            await signals.wait(id, seen: seen, timeout: Self.streamWakeSeconds)
        }
    }

    private static func id(_ body: ByteBuffer) throws -> String {
        let message = try decodeRequest(prism__v1__get_batch_request__init, body)
        let id = withExtendedLifetime(message) { String(protoC: message.pointee.id) }
        guard !id.isEmpty else { throw RPCError(.invalidArgument, "id is empty: name the batch (SubmitBatch's Batch.id)") }
        return id
    }

    /// A store failure as the client's status: the request was not (or not wholly) served.
    private func storeCall<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as StoreError {
            throw RPCError(.unavailable, "the batch store failed: \(error.description)")
        }
    }
}
