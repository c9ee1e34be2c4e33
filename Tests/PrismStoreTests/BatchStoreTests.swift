// The BatchStore state machine on both engines (SQLite files, a PostgreSQL database): counts, leases,
// results once in completion order, cancel (pending items, a chunk not yet sent), a chunk's way to the
// vendor and back, recovery in each chunk state, retention; and one process per SQLite data folder.
import Foundation
import XCTest
@testable import PrismStore

final class BatchStoreTests: XCTestCase {
    private var folder = ""
    private let now = Date(timeIntervalSince1970: 1_800_000_000)

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "prism-batches-\(UUID().uuidString)"
        try DataDirectory.prepare(folder)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: folder)
    }

    private func items(_ n: Int, lane: BatchLane = .local, model: String = "local/mediainfo") -> [NewBatchItem] {
        (0..<n).map { NewBatchItem(customID: "c\($0)", kind: 2, request: Data("request \($0)".utf8), model: model, lane: lane) }
    }

    private func ok(_ seq: Int) -> ItemOutcome { ItemOutcome(seq: seq, state: .succeeded, result: Data("answer \(seq)".utf8)) }

    func testABatchIsStoredQueuedAndCounted() async throws {
        try await onEachEngine { engine in
            let store = try engine.batchStore()
            let created = try await store.createBatch(id: "b1", label: "nightly", items: items(3), now: now)
            XCTAssertEqual(created.state, .queued)
            let read = try await store.batch("b1")
            XCTAssertEqual(read?.total, 3)
            XCTAssertEqual(read?.label, "nightly")
            XCTAssertEqual(read?.createdAt, now)
            XCTAssertNil(read?.finishedAt)
            let missing = try await store.batch("nope")
            XCTAssertNil(missing)
        }
    }

    func testLocalItemsAreLeasedOnceAndTheirResultsRecordedOnceInCompletionOrder() async throws {
        try await onEachEngine { engine in
            let store = try engine.batchStore()
            _ = try await store.createBatch(id: "b1", label: "", items: items(3), now: now)
            let first = try await store.claimLocal(owner: "me", limit: 2, now: now, leaseUntil: now.addingTimeInterval(60))
            XCTAssertEqual(first.map(\.seq), [0, 1])
            let running = try await store.batch("b1")
            XCTAssertEqual(running?.state, .running)
            let second = try await store.claimLocal(owner: "me", limit: 5, now: now, leaseUntil: now.addingTimeInterval(60))
            XCTAssertEqual(second.map(\.seq), [2], "a leased item was handed out twice")
            // Seq 1 finishes first: completion order, not submit order.
            let recorded = try await store.finishItems(batchID: "b1", [ok(1), ok(0)], now: now)
            XCTAssertEqual(recorded, 2)
            let again = try await store.finishItems(batchID: "b1", [ItemOutcome(seq: 1, state: .failed, result: Data("late".utf8))], now: now)
            XCTAssertEqual(again, 0, "a finished item took a second result")
            let finished = try await store.finishedItems(of: "b1", after: 0, limit: 10)
            XCTAssertEqual(finished.map(\.customID), ["c1", "c0"])
            XCTAssertEqual(finished.first?.result, Data("answer 1".utf8))
            let rest = try await store.finishedItems(of: "b1", after: finished[0].order, limit: 10)
            XCTAssertEqual(rest.map(\.customID), ["c0"])
            try await store.finishItems(batchID: "b1", [ItemOutcome(seq: 2, state: .failed, result: nil, errorCode: 13, errorMessage: "boom")], now: now)
            let done = try await store.batch("b1")
            XCTAssertEqual(done?.state, .done)
            XCTAssertEqual(done.map { [$0.succeeded, $0.failed, $0.cancelled] }, [2, 1, 0])
            XCTAssertEqual(done?.finishedAt, now)
        }
    }

    func testAnItemPutBackForARetryWaitsUntilItIsDue() async throws {
        try await onEachEngine { engine in
            let store = try engine.batchStore()
            _ = try await store.createBatch(id: "b1", label: "", items: items(1), now: now)
            let first = try await store.claimLocal(owner: "me", limit: 1, now: now, leaseUntil: now.addingTimeInterval(60))
            XCTAssertEqual(first.first?.attempts, 0)
            try await store.retryLater(batchID: "b1", seq: 0, notBefore: now.addingTimeInterval(10))
            let early = try await store.claimLocal(owner: "me", limit: 1, now: now.addingTimeInterval(5), leaseUntil: now.addingTimeInterval(60))
            XCTAssertTrue(early.isEmpty, "a retry was leased before it was due")
            let due = try await store.nextDue(after: now)
            XCTAssertEqual(due, now.addingTimeInterval(10))
            let later = try await store.claimLocal(owner: "me", limit: 1, now: now.addingTimeInterval(10), leaseUntil: now.addingTimeInterval(60))
            XCTAssertEqual(later.first?.attempts, 1)
        }
    }

    func testABatchWhoseEveryItemFailedIsFailed() async throws {
        try await onEachEngine { engine in
            let store = try engine.batchStore()
            _ = try await store.createBatch(id: "b1", label: "", items: items(1), now: now)
            try await store.finishItems(batchID: "b1", [ItemOutcome(seq: 0, state: .failed, result: nil, errorCode: 9, errorMessage: "no")], now: now)
            let batch = try await store.batch("b1")
            XCTAssertEqual(batch?.state, .failed)
        }
    }

    func testCancelFinishesPendingItemsAndLeavesRunningOnes() async throws {
        try await onEachEngine { engine in
            let store = try engine.batchStore()
            _ = try await store.createBatch(id: "b1", label: "", items: items(4), now: now)
            _ = try await store.claimLocal(owner: "me", limit: 1, now: now, leaseUntil: now.addingTimeInterval(60))
            let cancelled = try await store.cancelBatch("b1", now: now)
            XCTAssertEqual(cancelled?.cancelled, 3)
            XCTAssertEqual(cancelled?.state, .running, "an item still runs")
            let none = try await store.claimLocal(owner: "me", limit: 5, now: now, leaseUntil: now.addingTimeInterval(60))
            XCTAssertTrue(none.isEmpty)
            try await store.finishItems(batchID: "b1", [ok(0)], now: now)
            let done = try await store.batch("b1")
            XCTAssertEqual(done?.state, .cancelled)
            let results = try await store.finishedItems(of: "b1", after: 0, limit: 10)
            XCTAssertEqual(Set(results.map(\.customID)), ["c0", "c1", "c2", "c3"])
            XCTAssertEqual(Set(results.map(\.order)).count, 4, "completion orders must be distinct")
            XCTAssertEqual(results.first { $0.customID == "c2" }?.errorCode, SQLiteBatchStore.cancelledCode)
            let unknown = try await store.cancelBatch("nope", now: now)
            XCTAssertNil(unknown)
        }
    }

    func testAChunkGoesToTheVendorOnceAndItsResultsEndIt() async throws {
        try await onEachEngine { engine in
            let store = try engine.batchStore()
            _ = try await store.createBatch(id: "b1", label: "", items: items(3, lane: .vendor, model: "openai/gpt-4o"), now: now)
            guard let (chunk, taken) = try await store.prepareChunk(id: "k1", owner: "me", maxItems: 2, maxBytes: 1 << 20, now: now) else {
                return XCTFail("no chunk")
            }
            XCTAssertEqual(chunk.model, "openai/gpt-4o")
            XCTAssertEqual(taken.map(\.seq), [0, 1], "maxItems bounds a chunk")
            let marked = try await store.markSubmitting("k1")
            XCTAssertTrue(marked)
            try await store.recordVendorBatch("k1", vendorBatchID: "vb-1", nextPoll: now)
            let due = try await store.dueChunks(owner: "me", now: now, leaseUntil: now.addingTimeInterval(600), limit: 8)
            XCTAssertEqual(due.map(\.vendorBatchID), ["vb-1"])
            let leased = try await store.dueChunks(owner: "other", now: now, leaseUntil: now.addingTimeInterval(600), limit: 8)
            XCTAssertTrue(leased.isEmpty, "a leased poll was handed out twice")
            let ids = try await store.chunkItems("k1")
            XCTAssertEqual(ids, [0: "c0", 1: "c1"])
            try await store.finishChunk("k1", state: .done, outcomes: [ok(1)],
                                        leftover: ItemOutcome(seq: 0, state: .failed, result: nil, errorCode: 4, errorMessage: "expired"), now: now)
            let batch = try await store.batch("b1")
            XCTAssertEqual(batch?.vendorBatchIDs, ["vb-1"])
            XCTAssertEqual(batch.map { [$0.succeeded, $0.failed] }, [1, 1])
            // The third item goes out in a chunk of its own.
            let next = try await store.prepareChunk(id: "k2", owner: "me", maxItems: 2, maxBytes: 1 << 20, now: now)
            XCTAssertEqual(next?.1.map(\.seq), [2])
        }
    }

    func testAChunkIsBoundedByRequestBytesButTakesAtLeastOneItem() async throws {
        try await onEachEngine { engine in
            let store = try engine.batchStore()
            _ = try await store.createBatch(id: "b1", label: "", items: items(3, lane: .vendor), now: now)  // 9 bytes each
            let chunk = try await store.prepareChunk(id: "k1", owner: "me", maxItems: 10, maxBytes: 18, now: now)
            XCTAssertEqual(chunk?.1.count, 2)
            let tiny = try await store.prepareChunk(id: "k2", owner: "me", maxItems: 10, maxBytes: 1, now: now)
            XCTAssertEqual(tiny?.1.count, 1)
        }
    }

    func testCancelBeforeTheIntentKeepsTheChunkFromTheVendor() async throws {
        try await onEachEngine { engine in
            let store = try engine.batchStore()
            _ = try await store.createBatch(id: "b1", label: "", items: items(2, lane: .vendor), now: now)
            _ = try await store.prepareChunk(id: "k1", owner: "me", maxItems: 10, maxBytes: 1 << 20, now: now)
            let cancelled = try await store.cancelBatch("b1", now: now)
            XCTAssertEqual(cancelled?.state, .cancelled)
            XCTAssertEqual(cancelled?.cancelled, 2)
            let marked = try await store.markSubmitting("k1")
            XCTAssertFalse(marked, "a cancelled batch's chunk was about to be sent")
        }
    }

    func testRecoveryReleasesWhatADeadProcessHeldAndAbandonsAChunkCaughtMidSubmit() async throws {
        try await onEachEngine { engine in
            do {
                let store = try engine.batchStore()
                _ = try await store.createBatch(id: "local", label: "", items: items(2), now: now)
                _ = try await store.createBatch(id: "v1", label: "", items: items(2, lane: .vendor), now: now)
                _ = try await store.createBatch(id: "v2", label: "", items: items(2, lane: .vendor), now: now)
                _ = try await store.claimLocal(owner: "dead", limit: 1, now: now, leaseUntil: now.addingTimeInterval(3600))
                _ = try await store.prepareChunk(id: "sent", owner: "dead", maxItems: 10, maxBytes: 1 << 20, now: now)  // v1
                _ = try await store.markSubmitting("sent")
                _ = try await store.prepareChunk(id: "unsent", owner: "dead", maxItems: 10, maxBytes: 1 << 20, now: now)  // v2
            }
            // The process died; a new one opens the store, after the dead one's leases expired (the
            // embedded store releases them at once: one process owns its folder).
            let store = try engine.batchStore()
            let found = try await store.recover(owner: "alive", now: now.addingTimeInterval(7200))
            XCTAssertEqual(found.itemsReleased, 1)
            XCTAssertEqual(found.chunksReleased, 1)
            XCTAssertEqual(found.chunksAbandoned, 1)
            let v1 = try await store.batch("v1")
            XCTAssertEqual(v1?.state, .failed)
            let abandoned = try await store.finishedItems(of: "v1", after: 0, limit: 10)
            XCTAssertEqual(abandoned.map(\.errorCode), [SQLiteBatchStore.abandonedCode, SQLiteBatchStore.abandonedCode])
            XCTAssertTrue(abandoned[0].errorMessage.contains(SQLiteBatchStore.displayName(batchID: "v1", chunkID: "sent")), abandoned[0].errorMessage)
            let local = try await store.claimLocal(owner: "alive", limit: 5, now: now, leaseUntil: now.addingTimeInterval(60))
            XCTAssertEqual(local.map(\.seq), [0, 1], "the dead process's item is leased again")
            let again = try await store.prepareChunk(id: "again", owner: "alive", maxItems: 10, maxBytes: 1 << 20, now: now)
            XCTAssertEqual(again?.0.batchID, "v2", "an unsent chunk's items go out again")
            XCTAssertEqual(again?.1.count, 2)
        }
    }

    func testFinishedBatchesPastRetentionAreRemovedWithTheirItems() async throws {
        try await onEachEngine { engine in
            let store = try engine.batchStore()
            _ = try await store.createBatch(id: "old", label: "", items: items(1), now: now)
            _ = try await store.createBatch(id: "open", label: "", items: items(1), now: now)
            try await store.finishItems(batchID: "old", [ok(0)], now: now)
            let kept = try await store.removeFinished(before: now)
            XCTAssertEqual(kept, 0)
            let removed = try await store.removeFinished(before: now.addingTimeInterval(1))
            XCTAssertEqual(removed, 1)
            let gone = try await store.batch("old")
            XCTAssertNil(gone)
            let open = try await store.batch("open")
            XCTAssertNotNil(open)
            let orphans = try await engine.count("items", "batch_id = 'old'")
            XCTAssertEqual(orphans, 0)
        }
    }

    func testOneProcessOwnsTheFoldersBatches() throws {
        let first = try SQLiteBatchStore(store: EmbeddedStore(directory: folder))
        // flock locks belong to the open file description: a second open in this process conflicts
        // as a second process's would.
        XCTAssertThrowsError(try SQLiteBatchStore(store: EmbeddedStore(directory: folder))) { error in
            XCTAssertTrue("\(error)".contains("another prism-server is using the data folder"), "\(error)")
        }
        withExtendedLifetime(first) {}
    }
}
