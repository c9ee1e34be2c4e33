// Durable batches as the scheduler and the batch RPCs see them: a batch row, its item rows and the
// vendor chunks its items went out in, each with an explicit state moved by one statement, and
// leases on the work a process holds. SQLiteBatchStore is the embedded implementation; a shared
// one (PostgreSQL, issue 15) claims the same rows with FOR UPDATE SKIP LOCKED. Requests and results
// are opaque bytes (the server's protobuf encodings): the store knows nothing of RPC or providers.
import Foundation

/// A batch's life (prism.v1.BatchState): queued until the first item starts, running until every
/// item is finished, then done, cancelled (a cancel was asked) or failed (every item failed).
public enum BatchLifecycle: String, Sendable, CaseIterable {
    case queued, running, done, cancelled, failed

    public var isFinished: Bool { self == .done || self == .cancelled || self == .failed }
}

/// An item's state. pending → running (leased, the normal call path) → succeeded | failed;
/// pending → submitted (in a vendor chunk) → succeeded | failed | cancelled; pending → cancelled.
/// A running item whose lease died goes back to pending.
public enum BatchItemState: String, Sendable, CaseIterable {
    case pending, running, submitted, succeeded, failed, cancelled

    public var isFinished: Bool { self == .succeeded || self == .failed || self == .cancelled }
}

/// How an item runs: through the normal call path with bounded concurrency, or in a vendor batch.
public enum BatchLane: String, Sendable {
    case local, vendor
}

/// A vendor chunk's state. preparing (items taken, media being fitted; nothing sent) → submitting
/// (the intent: the vendor call may be under way) → running (the vendor's id recorded) → done |
/// failed. A chunk found submitting after a crash is abandoned: the vendor may or may not have its
/// batch, and resubmitting could run (and bill) the items twice.
public enum VendorChunkState: String, Sendable {
    case preparing, submitting, running, done, failed, abandoned
}

/// One item as SubmitBatch hands it to the store.
public struct NewBatchItem: Sendable {
    public var customID: String
    /// What `request` holds (the server's numbering: 1 generate, 2 extract).
    public var kind: Int
    public var request: Data
    /// The model the planner chose at submit time ("" when none could be chosen).
    public var model: String
    public var lane: BatchLane

    public init(customID: String, kind: Int, request: Data, model: String, lane: BatchLane) {
        self.customID = customID
        self.kind = kind
        self.request = request
        self.model = model
        self.lane = lane
    }
}

/// A batch as GetBatch reports it.
public struct BatchRecord: Sendable, Equatable {
    public var id: String
    public var label: String
    public var state: BatchLifecycle
    public var total: Int
    public var succeeded: Int
    public var failed: Int
    public var cancelled: Int
    public var createdAt: Date
    public var finishedAt: Date?
    public var vendorBatchIDs: [String]
    public var cancelRequested: Bool

    public init(id: String, label: String, state: BatchLifecycle, total: Int, succeeded: Int, failed: Int, cancelled: Int,
                createdAt: Date, finishedAt: Date?, vendorBatchIDs: [String], cancelRequested: Bool) {
        (self.id, self.label, self.state, self.total) = (id, label, state, total)
        (self.succeeded, self.failed, self.cancelled) = (succeeded, failed, cancelled)
        (self.createdAt, self.finishedAt, self.vendorBatchIDs, self.cancelRequested) = (createdAt, finishedAt, vendorBatchIDs, cancelRequested)
    }
}

/// An item handed to a worker: to run (local lane) or to send in a chunk (vendor lane).
public struct ClaimedItem: Sendable {
    public var batchID: String
    public var seq: Int
    public var customID: String
    public var kind: Int
    public var request: Data
    public var model: String
    /// Earlier runs of the item that ended in a passing failure (see `retryLater`).
    public var attempts: Int

    public init(batchID: String, seq: Int, customID: String, kind: Int, request: Data, model: String, attempts: Int) {
        (self.batchID, self.seq, self.customID, self.kind) = (batchID, seq, customID, kind)
        (self.request, self.model, self.attempts) = (request, model, attempts)
    }
}

/// How a finished item ended. `result` is the encoded answer; when nil (items finished in bulk:
/// cancelled, or left without an answer by their vendor batch) `errorCode`/`errorMessage` say why.
public struct ItemOutcome: Sendable {
    public var seq: Int
    public var state: BatchItemState
    public var result: Data?
    public var errorCode: Int
    public var errorMessage: String

    public init(seq: Int, state: BatchItemState, result: Data?, errorCode: Int = 0, errorMessage: String = "") {
        self.seq = seq
        self.state = state
        self.result = result
        self.errorCode = errorCode
        self.errorMessage = errorMessage
    }
}

/// A finished item as StreamBatchResults sends it, in completion order (`order`).
public struct FinishedItem: Sendable {
    public var order: Int64
    public var customID: String
    public var state: BatchItemState
    public var result: Data?
    public var errorCode: Int
    public var errorMessage: String

    public init(order: Int64, customID: String, state: BatchItemState, result: Data?, errorCode: Int, errorMessage: String) {
        (self.order, self.customID, self.state) = (order, customID, state)
        (self.result, self.errorCode, self.errorMessage) = (result, errorCode, errorMessage)
    }
}

/// A vendor chunk: one vendor batch holding items of one batch for one model.
public struct VendorChunk: Sendable {
    public var id: String
    public var batchID: String
    /// The batch's label, shown with the chunk's name at the vendor.
    public var label: String
    public var model: String
    public var state: VendorChunkState
    public var vendorBatchID: String?
    /// Polls made so far (the backoff's exponent).
    public var polls: Int
    /// Its batch was cancelled and the vendor has not been asked to cancel yet.
    public var cancelRequested: Bool

    public init(id: String, batchID: String, label: String, model: String, state: VendorChunkState, vendorBatchID: String?,
                polls: Int, cancelRequested: Bool) {
        (self.id, self.batchID, self.label, self.model, self.state) = (id, batchID, label, model, state)
        (self.vendorBatchID, self.polls, self.cancelRequested) = (vendorBatchID, polls, cancelRequested)
    }
}

/// What recovery at startup found left by a process that died.
public struct BatchRecovery: Sendable, Equatable {
    /// Running items put back to pending.
    public var itemsReleased = 0
    /// Chunks found preparing (nothing sent): their items put back to pending.
    public var chunksReleased = 0
    /// Chunks found submitting without a vendor id: their items failed, not resubmitted.
    public var chunksAbandoned = 0

    public init() {}
}

public protocol BatchStore: Sendable {
    // MARK: batches (the RPCs)

    /// Stores a batch and all its items in one durable transaction; returns it queued.
    func createBatch(id: String, label: String, items: [NewBatchItem], now: Date) async throws -> BatchRecord
    func batch(_ id: String) async throws -> BatchRecord?
    /// Finished items of batch `id` completed after `order`, in completion order, at most `limit`.
    func finishedItems(of id: String, after order: Int64, limit: Int) async throws -> [FinishedItem]
    /// Marks the batch cancelled-on-request, cancels its pending items (and those of chunks not yet
    /// sent), makes its chunks at the vendor due for a poll (which asks the vendor to cancel) and
    /// finishes the batch if nothing runs; nil for an unknown id.
    func cancelBatch(_ id: String, now: Date) async throws -> BatchRecord?
    /// Removes batches finished before `cutoff`, with their items and chunks; returns how many.
    func removeFinished(before cutoff: Date) async throws -> Int

    // MARK: work (the scheduler)

    /// Releases what a dead process held (see BatchRecovery); `owner` is this process's lease name.
    func recover(owner: String, now: Date) async throws -> BatchRecovery
    /// Leases up to `limit` pending local-lane items due at `now`, oldest first, marking them running.
    func claimLocal(owner: String, limit: Int, now: Date, leaseUntil: Date) async throws -> [ClaimedItem]
    /// running → pending again for an item whose run ended in a passing failure (the provider
    /// unavailable or rate-limited), not leased again before `notBefore`.
    func retryLater(batchID: String, seq: Int, notBefore: Date) async throws
    /// Extends the leases `owner` holds on running items.
    func renewLeases(owner: String, until: Date) async throws
    /// Records finished items of one batch (each only if still unfinished: a result is stored
    /// once) and finishes the batch when nothing of it is left; returns how many were recorded.
    @discardableResult
    func finishItems(batchID: String, _ outcomes: [ItemOutcome], now: Date) async throws -> Int
    /// Takes pending vendor-lane items of one batch and model (up to `maxItems` and `maxBytes` of
    /// requests, at least one) into a new chunk in state preparing; nil when there are none.
    func prepareChunk(id: String, owner: String, maxItems: Int, maxBytes: Int, now: Date) async throws -> (VendorChunk, [ClaimedItem])?
    /// Puts a preparing chunk's items back to pending on the local lane (their model lost its
    /// batch API) and removes the chunk.
    func moveChunkToLocal(_ chunkID: String) async throws
    /// preparing → submitting, the durable intent before the vendor call; false (and nothing sent)
    /// when its batch was cancelled meanwhile.
    func markSubmitting(_ chunkID: String) async throws -> Bool
    /// submitting → running with the vendor's id, durably; the first poll at `nextPoll`.
    func recordVendorBatch(_ chunkID: String, vendorBatchID: String, nextPoll: Date) async throws
    /// Leases up to `limit` running chunks whose next poll is due.
    func dueChunks(owner: String, now: Date, leaseUntil: Date, limit: Int) async throws -> [VendorChunk]
    /// Releases a polled chunk still running at the vendor, to be polled again at `nextPoll`.
    func reschedulePoll(_ chunkID: String, nextPoll: Date) async throws
    /// Records that the vendor was asked to cancel the chunk's batch.
    func markCancelSent(_ chunkID: String) async throws
    /// Seq → custom id of a chunk's items.
    func chunkItems(_ chunkID: String) async throws -> [Int: String]
    /// Ends a chunk (done or failed) with its items' outcomes, in one transaction; items of the
    /// chunk without an outcome finish as `leftover` says.
    func finishChunk(_ chunkID: String, state: VendorChunkState, outcomes: [ItemOutcome], leftover: ItemOutcome, now: Date) async throws
    /// When the next chunk poll, or the next item retry after `now`, is due.
    func nextDue(after now: Date) async throws -> Date?
}
