// Vendor batches as the host drives them (plugin ABI 1.2): the actions a batch call carries, the
// status and per-item results it answers with, and PluginHost calls that run one action on the
// plugin serving a model. The gateway's own batch bookkeeping sits above this.
import CPrismPlugin
import Foundation

/// Where a vendor batch is (prism.plugin.v1.BatchState).
public enum BatchState: Int, Sendable, Equatable, CustomStringConvertible {
    case running = 1, ended, cancelling, cancelled, failed, expired

    public var description: String {
        switch self {
        case .running: return "running"
        case .ended: return "ended"
        case .cancelling: return "cancelling"
        case .cancelled: return "cancelled"
        case .failed: return "failed"
        case .expired: return "expired"
        }
    }
}

/// A vendor batch's state and item counts.
public struct BatchStatus: Sendable, Equatable {
    public var vendorBatchID: String
    public var state: BatchState
    /// The vendor's own word for the state (e.g. "finalizing").
    public var vendorState: String
    public var total: Int
    public var succeeded: Int
    public var failed: Int
    public var cancelled: Int
    public var expired: Int
    /// Why a failed batch failed.
    public var message: String
}

/// The outcome of one item of an ended batch.
public struct BatchItemResult: Sendable, Equatable {
    public var customID: String
    /// The answer as a streamed call's events (text, tool calls, usage, finished); empty on failure.
    public var events: [ProviderEvent]
    /// The plugin's prism_status for this item; PRISM_STATUS_OK for an answer.
    public var status: Int32
    public var message: String

    public var isOK: Bool { status == Int32(PRISM_STATUS_OK.rawValue) }
}

/// One action on a vendor batch.
public enum BatchAction: Sendable {
    /// Items are adapted requests for the batch's model (media already fitted).
    case submit(items: [(customID: String, request: GenerationRequest)], displayName: String)
    case get(vendorBatchID: String)
    case results(vendorBatchID: String)
    case cancel(vendorBatchID: String)
}

extension PluginHost {
    /// Starts `action` on the plugin serving `model`; read the call until it ends. Throws
    /// FAILED_PRECONDITION when the model has no batch API.
    public func startBatchCall(model: ModelCapability, action: BatchAction, deadline: Date? = nil) throws -> PluginCall {
        guard model.features.batch else {
            throw ProviderFailure(.failedPrecondition, "\(model.name) has no batch API")
        }
        let requestID = UUID().uuidString
        let bytes = RequestEncoder.encode(action, model: model.id, requestID: requestID, deadline: deadline)
        return try start(model: model, bytes: bytes, requestID: requestID, deadline: deadline, input: nil)
    }

    /// Runs a submit, get or cancel and returns the batch's status.
    public func batchStatus(model: ModelCapability, action: BatchAction, deadline: Date? = nil) async throws -> BatchStatus {
        var status: BatchStatus?
        try await run(model: model, action: action, deadline: deadline) { event in
            if case .batchStatus(let s) = event { status = s }
        }
        guard let status else {
            throw ProviderFailure(.internalError, "the plugin for \(model.name) answered a batch call without a batch status")
        }
        return status
    }

    /// Reads every item result of an ended batch.
    public func batchResults(model: ModelCapability, vendorBatchID: String, deadline: Date? = nil) async throws -> [BatchItemResult] {
        var results: [BatchItemResult] = []
        try await run(model: model, action: .results(vendorBatchID: vendorBatchID), deadline: deadline) { event in
            if case .batchResult(let r) = event { results.append(r) }
        }
        return results
    }

    private func run(model: ModelCapability, action: BatchAction, deadline: Date?, _ receive: (ProviderEvent) -> Void) async throws {
        let call = try startBatchCall(model: model, action: action, deadline: deadline)
        let end = await call.read { receive($0) }
        guard end.isOK else { throw Generator.failure(end, model: model, deadline: deadline) }
    }
}
