// prism.v1 messages of the batch RPCs: a SubmitBatchRequest's items checked and turned into store
// rows (each request kept as its own encoded message, as sent), a stored batch as prism.v1.Batch,
// and each item's prism.v1.BatchResult, stored encoded so a stream sends it without re-encoding.
import Foundation
import NIOCore
import PrismProto
import PrismProviders
import PrismRPC
import PrismSchema
import PrismStore

enum BatchCodec {
    /// Items per SubmitBatch: the most any vendor takes in one batch file (OpenAI's 50,000 lines).
    static let maxItems = 50_000
    /// The longest custom_id: an id, not a payload. Vendors never see it (a chunk's items go out
    /// under ids of their own), so their narrower rules do not apply.
    static let maxCustomIDLength = 256

    /// What a stored item holds: BatchItem.request's field numbers, and a GenerateRequest already
    /// adapted for its model at submit (AdaptedRequest).
    enum Kind: Int {
        case generate = 2, extract = 3, adaptedGenerate = 102
    }

    /// One checked item: its request for planning and its encoding for the store.
    struct Item {
        var customID: String
        var kind: Kind
        var request: GenerationRequest
        var encoded: Data
    }

    /// The items of a SubmitBatchRequest, each decoded as its RPC would decode it; INVALID_ARGUMENT
    /// names the first bad item (by index and custom_id) and what is wrong with it.
    static func items(_ r: Prism__V1__SubmitBatchRequest) throws -> [Item] {
        let raw = elements(r.items, r.n_items)
        guard !raw.isEmpty else { throw RPCError(.invalidArgument, "items: a batch needs at least one item") }
        guard raw.count <= maxItems else {
            throw RPCError(.invalidArgument, "items: a batch takes at most \(maxItems) items; this one has \(raw.count)")
        }
        var seen: [String: Int] = [:]
        let builder = ProtoBuilder()
        return try raw.enumerated().map { index, pointer in
            let item = pointer.pointee
            let customID = String(protoC: item.custom_id)
            let field = "items[\(index)]"
            guard !customID.isEmpty else { throw RPCError(.invalidArgument, "\(field).custom_id is empty: every item needs one, unique in the batch") }
            guard customID.count <= maxCustomIDLength else {
                throw RPCError(.invalidArgument, "\(field).custom_id '\(customID.prefix(20))…' is longer than \(maxCustomIDLength) characters")
            }
            if let first = seen.updateValue(index, forKey: customID) {
                throw RPCError(.invalidArgument, "\(field).custom_id '\(customID)' is a duplicate of items[\(first)].custom_id: custom_ids must be unique in the batch")
            }
            do {
                switch item.request_case {
                case PRISM__V1__BATCH_ITEM__REQUEST_GENERATE:
                    let generate = item.generate!
                    return Item(customID: customID, kind: .generate, request: try GenerateService.generationRequest(generate.pointee),
                                encoded: Data(builder.pack(UnsafePointer(generate))))
                case PRISM__V1__BATCH_ITEM__REQUEST_EXTRACT:
                    let extract = item.extract!
                    return Item(customID: customID, kind: .extract, request: try ExtractService.extraction(extract.pointee).0,
                                encoded: Data(builder.pack(UnsafePointer(extract))))
                default:
                    throw RPCError(.invalidArgument, "sets neither generate nor extract")
                }
            } catch let error as RPCError {
                throw RPCError(error.code, "\(field) (custom_id '\(customID)'): \(error.message)")
            }
        }
    }

    /// A stored Generate item's request, decoded as Generate decodes one.
    static func generationRequest(_ encoded: Data) throws -> GenerationRequest {
        let message = try ProtoMessage(prism__v1__generate_request__init, bytes: [UInt8](encoded))
        return try withExtendedLifetime(message) { try GenerateService.generationRequest(message.pointee) }
    }

    /// A stored Extract item's first generation and compiled schema, as Extract makes them.
    static func extraction(_ encoded: Data) throws -> (GenerationRequest, JSONSchema) {
        let message = try ProtoMessage(prism__v1__extract_request__init, bytes: [UInt8](encoded))
        return try withExtendedLifetime(message) { try ExtractService.extraction(message.pointee) }
    }

    static func batch(_ record: BatchRecord) -> ByteBuffer {
        let b = ProtoBuilder()
        let m = b.message(prism__v1__batch__init)
        m.pointee.id = b.string(record.id)
        m.pointee.label = b.string(record.label)
        m.pointee.state = state(record.state)
        m.pointee.total = UInt32(record.total)
        m.pointee.succeeded = UInt32(record.succeeded)
        m.pointee.failed = UInt32(record.failed)
        m.pointee.cancelled = UInt32(record.cancelled)
        m.pointee.created_at = milliseconds(record.createdAt)
        m.pointee.finished_at = record.finishedAt.map(milliseconds) ?? 0
        m.pointee.n_vendor_batch_ids = record.vendorBatchIDs.count
        m.pointee.vendor_batch_ids = b.strings(record.vendorBatchIDs)
        return encodeResponse(b, m)
    }

    static func state(_ state: BatchLifecycle) -> Prism__V1__BatchState {
        switch state {
        case .queued: return PRISM__V1__BATCH_STATE__BATCH_STATE_QUEUED
        case .running: return PRISM__V1__BATCH_STATE__BATCH_STATE_RUNNING
        case .done: return PRISM__V1__BATCH_STATE__BATCH_STATE_DONE
        case .cancelled: return PRISM__V1__BATCH_STATE__BATCH_STATE_CANCELLED
        case .failed: return PRISM__V1__BATCH_STATE__BATCH_STATE_FAILED
        }
    }

    /// A Generate item's answer.
    static func textResult(_ customID: String, text: String, usage: Usage?) -> Data {
        result(customID, usage: usage) { b, m in
            m.pointee.result_case = PRISM__V1__BATCH_RESULT__RESULT_TEXT
            m.pointee.text = b.string(text)
        }
    }

    /// An Extract item's answer.
    static func extractResult(_ customID: String, _ extraction: Extraction) -> Data {
        result(customID, usage: extraction.usage) { b, m in
            m.pointee.result_case = PRISM__V1__BATCH_RESULT__RESULT_EXTRACT
            m.pointee.extract = ExtractService.response(extraction, in: b)
        }
    }

    /// An item's failure, with the gRPC code a Generate call would have ended with.
    static func errorResult(_ customID: String, code: StatusCode, message: String, usage: Usage? = nil) -> Data {
        errorResult(customID, code: Int(code.rawValue), message: message, usage: usage)
    }

    static func errorResult(_ customID: String, code: Int, message: String, usage: Usage? = nil) -> Data {
        result(customID, usage: usage) { b, m in
            let status = b.message(prism__v1__status__init)
            status.pointee.code = Int32(code)
            status.pointee.message = b.string(message)
            m.pointee.result_case = PRISM__V1__BATCH_RESULT__RESULT_ERROR
            m.pointee.error = status
        }
    }

    /// A finished item as the stream sends it: its stored result, or one made of its error.
    static func result(_ item: FinishedItem) -> ByteBuffer {
        let bytes = item.result ?? errorResult(item.customID, code: item.errorCode, message: item.errorMessage)
        var buffer = ByteBufferAllocator().buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        return buffer
    }

    private static func result(_ customID: String, usage: Usage?,
                               _ fill: (ProtoBuilder, UnsafeMutablePointer<Prism__V1__BatchResult>) -> Void) -> Data {
        let b = ProtoBuilder()
        let m = b.message(prism__v1__batch_result__init)
        m.pointee.custom_id = b.string(customID)
        if let usage { m.pointee.usage = b.usage(usage) }
        fill(b, m)
        return Data(b.pack(m))
    }

    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
}
