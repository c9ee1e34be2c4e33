// Batch calls (ABI 1.2) as a Swift plugin sees them: the action the host asks for, decoded from
// ProviderRequest.batch, and the BatchStatus / BatchItemResult events a plugin answers with.
import Foundation

/// One action on a vendor batch (prism.plugin.v1.BatchCall).
public struct BatchCall: Sendable {
    public enum Action: Int, Sendable { case submit = 1, get, results, cancel }

    /// nil when the host sent an action this plugin does not know.
    public var action: Action?
    /// SUBMIT: the requests, each for the call's model with media already fitted.
    public var items: [BatchItem]
    /// GET, RESULTS, CANCEL: the id a SUBMIT answered with.
    public var vendorBatchID: String
    /// SUBMIT: a label for the vendor's console; may be empty.
    public var displayName: String
}

/// One request of a batch and the id its result will carry.
public struct BatchItem: Sendable {
    public var customID: String
    public var request: ProviderRequest
}

/// Where a vendor batch is (prism.plugin.v1.BatchState).
public enum BatchState: Int, Sendable { case running = 1, ended, cancelling, cancelled, failed, expired }

/// A vendor batch's state and item counts, as the answer to SUBMIT, GET and CANCEL.
public struct BatchStatus: Sendable {
    public var vendorBatchID: String
    public var state: BatchState
    /// The vendor's own word for the state, for logs.
    public var vendorState: String
    public var total: UInt32
    public var succeeded: UInt32
    public var failed: UInt32
    public var cancelled: UInt32
    public var expired: UInt32
    /// Why a failed batch failed.
    public var message: String

    public init(vendorBatchID: String, state: BatchState, vendorState: String = "", total: UInt32 = 0, succeeded: UInt32 = 0,
                failed: UInt32 = 0, cancelled: UInt32 = 0, expired: UInt32 = 0, message: String = "") {
        self.vendorBatchID = vendorBatchID
        self.state = state
        self.vendorState = vendorState
        self.total = total
        self.succeeded = succeeded
        self.failed = failed
        self.cancelled = cancelled
        self.expired = expired
        self.message = message
    }
}

/// One item's answer in RESULTS: what a streamed call would have emitted, or why it failed.
public struct BatchItemOutcome: Sendable {
    public var customID: String
    public var status: CallStatus = .ok
    /// The vendor's explanation of a failure.
    public var message = ""
    public var text = ""
    public var toolCalls: [(id: String, name: String, argumentsJSON: String)] = []
    public var usage: (input: UInt64, output: UInt64)?
    public var stopReason: StopReason?

    public init(customID: String) { self.customID = customID }
}

extension ProviderCall {
    /// Emits a batch's status (ProviderEvent.batch_status). Returns false when the call was cancelled.
    @discardableResult public func batchStatus(_ s: BatchStatus) -> Bool {
        emit { $0.message(7) { b in
            b.string(1, s.vendorBatchID); b.uint(2, UInt64(s.state.rawValue)); b.string(3, s.vendorState)
            b.uint(4, UInt64(s.total)); b.uint(5, UInt64(s.succeeded)); b.uint(6, UInt64(s.failed))
            b.uint(7, UInt64(s.cancelled)); b.uint(8, UInt64(s.expired)); b.string(9, s.message)
        } }
    }

    /// Emits one item's outcome (ProviderEvent.batch_result), its answer as nested events in the
    /// order a stream has them: text, tool calls, usage, finished.
    @discardableResult public func batchResult(_ r: BatchItemOutcome) -> Bool {
        emit(capacity: r.text.utf8.count + 64) { $0.message(8) { b in
            b.string(1, r.customID)
            if !r.text.isEmpty { b.message(2) { e in e.message(1) { $0.string(1, r.text) } } }
            for t in r.toolCalls {
                b.message(2) { e in e.message(2) { c in c.string(1, t.id); c.string(2, t.name); c.string(3, t.argumentsJSON) } }
            }
            if let usage = r.usage { b.message(2) { e in e.message(4) { u in u.uint(1, usage.input); u.uint(2, usage.output) } } }
            if let reason = r.stopReason { b.message(2) { e in e.message(5) { $0.uint(1, UInt64(reason.rawValue)) } } }
            b.uint(3, UInt64(r.status.rawValue))
            b.string(4, r.message)
        } }
    }
}
