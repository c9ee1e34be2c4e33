// prism.v1.Prism/IndexDocument and the index's housekeeping (DeleteDocument, ListDocuments,
// ListIndexes): an upload is a header then data chunks, bounded by index.max_upload_bytes, read by
// the DocumentIngester and swapped into the DocumentIndex in one transaction.
import Foundation
import Logging
import NIOCore
import PrismProto
import PrismProviders
import PrismRPC
import PrismStore

enum IndexService {
    /// What the index's methods need: the store, the ingester, the upload bound.
    struct Parts: Sendable {
        let index: DocumentIndex
        let ingester: DocumentIngester
        let maxUploadBytes: Int
    }

    /// The client-streaming handler of IndexDocument.
    static func indexDocument(_ index: DocumentIndex, _ ingester: DocumentIngester, maxUploadBytes: Int) -> RPCHandler {
        .clientStreaming { requests, context in
            var upload: DocumentIngester.Upload?
            for try await body in requests {
                let message = try decodeRequest(prism__v1__index_document_request__init, body)
                let m = message.pointee
                switch m.payload_case {
                case PRISM__V1__INDEX_DOCUMENT_REQUEST__PAYLOAD_HEADER:
                    guard upload == nil, let h = m.header?.pointee else { throw RPCError(.invalidArgument, "header: a second header in one upload") }
                    upload = DocumentIngester.Upload(index: try indexName(String(protoC: h.index)),
                                                     documentID: try documentID(String(protoC: h.document_id), allowEmpty: true),
                                                     declaredMime: String(protoC: h.mime_type), title: String(protoC: h.title), data: Data())
                case PRISM__V1__INDEX_DOCUMENT_REQUEST__PAYLOAD_DATA:
                    guard upload != nil else { throw RPCError(.invalidArgument, "header: the first IndexDocumentRequest must be the header, not data") }
                    guard upload!.data.count + m.data.len <= maxUploadBytes else {
                        throw RPCError(.resourceExhausted, "data: the upload is larger than index.max_upload_bytes (\(maxUploadBytes) bytes)")
                    }
                    if m.data.len > 0 { upload!.data.append(m.data.data, count: m.data.len) }
                default:
                    throw RPCError(.invalidArgument, "payload: an IndexDocumentRequest with neither header nor data")
                }
            }
            guard var upload else { throw RPCError(.invalidArgument, "header: the stream ended without a header") }
            guard !upload.data.isEmpty else { throw RPCError(.invalidArgument, "data: the document has no bytes") }
            if upload.documentID.isEmpty { upload.documentID = "doc-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16) }

            let started = Date()
            let result: DocumentIngester.Result
            do {
                result = try await ingester.ingest(upload)
            } catch let failure as ProviderFailure {
                throw GenerateService.rpcError(failure, context)
            }
            try await stored { try await index.replace(result.content) }
            let content = result.content
            ingester.logger.info("indexed \(content.index)/\(content.documentID): \(content.pages.count) pages, \(content.chunks.count) chunks in \(String(format: "%.2f", Date().timeIntervalSince(started))) s\(result.notes.isEmpty ? "" : "; " + result.notes.joined(separator: "; "))")

            let b = ProtoBuilder()
            let r = b.message(prism__v1__index_document_response__init)
            r.pointee.document_id = b.string(content.documentID)
            r.pointee.pages = UInt32(content.pages.count)
            r.pointee.chunks = UInt32(content.chunks.count)
            r.pointee.images = UInt32(content.pages.filter { $0.image != nil }.count)
            r.pointee.n_notes = result.notes.count
            r.pointee.notes = b.strings(result.notes)
            return encodeResponse(b, r)
        }
    }

    static func deleteDocument(_ index: DocumentIndex) -> RPCHandler {
        .unary { body, _ in
            let message = try decodeRequest(prism__v1__delete_document_request__init, body)
            let (name, id) = try withExtendedLifetime(message) {
                (try indexName(String(protoC: message.pointee.index)), try documentID(String(protoC: message.pointee.document_id), allowEmpty: false))
            }
            let deleted = try await stored { try await index.delete(index: name, documentID: id) }
            let b = ProtoBuilder()
            let r = b.message(prism__v1__delete_document_response__init)
            r.pointee.deleted = deleted ? 1 : 0
            return encodeResponse(b, r)
        }
    }

    static func listDocuments(_ index: DocumentIndex) -> RPCHandler {
        .unary { body, _ in
            let message = try decodeRequest(prism__v1__list_documents_request__init, body)
            let name = try withExtendedLifetime(message) { try indexName(String(protoC: message.pointee.index)) }
            let documents = try await stored { try await index.documents(index: name) }
            guard !documents.isEmpty else { throw unknownIndex(name) }
            let b = ProtoBuilder()
            let items = documents.map { d in
                let m = b.message(prism__v1__indexed_document__init)
                m.pointee.document_id = b.string(d.documentID)
                m.pointee.title = b.string(d.title)
                m.pointee.mime_type = b.string(d.mimeType)
                m.pointee.pages = UInt32(d.pages)
                m.pointee.chunks = UInt32(d.chunks)
                m.pointee.images = UInt32(d.images)
                m.pointee.stored_bytes = UInt64(d.storedBytes)
                m.pointee.indexed_at = Int64(d.indexedAt.timeIntervalSince1970)
                return m
            }
            let r = b.message(prism__v1__list_documents_response__init)
            r.pointee.n_documents = items.count
            r.pointee.documents = b.array(items)
            return encodeResponse(b, r)
        }
    }

    static func listIndexes(_ index: DocumentIndex) -> RPCHandler {
        .unary { body, _ in
            _ = try decodeRequest(prism__v1__list_indexes_request__init, body)
            let indexes = try await stored { try await index.indexes() }
            let b = ProtoBuilder()
            let items = indexes.map { i in
                let m = b.message(prism__v1__index_summary__init)
                m.pointee.name = b.string(i.name)
                m.pointee.documents = UInt32(i.documents)
                m.pointee.chunks = UInt32(i.chunks)
                m.pointee.stored_bytes = UInt64(i.storedBytes)
                return m
            }
            let r = b.message(prism__v1__list_indexes_response__init)
            r.pointee.n_indexes = items.count
            r.pointee.indexes = b.array(items)
            return encodeResponse(b, r)
        }
    }

    // MARK: - shared by the index's methods

    /// An index name: letters, digits, '.', '_' and '-', starting with a letter or digit.
    static func indexName(_ name: String, field: String = "index") throws -> String {
        guard !name.isEmpty else { throw RPCError(.invalidArgument, "\(field): the index name is empty") }
        guard name.count <= IndexLimits.maxIndexNameLength,
              name.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0)) }),
              name.first?.isLetter == true || name.first?.isNumber == true else {
            throw RPCError(.invalidArgument, "\(field): '\(name)' is not an index name (letters, digits, '.', '_', '-', at most \(IndexLimits.maxIndexNameLength))")
        }
        return name
    }

    /// A document id: any printable text up to the limit; empty only where the server assigns one.
    static func documentID(_ id: String, allowEmpty: Bool) throws -> String {
        if id.isEmpty, !allowEmpty { throw RPCError(.invalidArgument, "document_id: empty") }
        guard id.count <= IndexLimits.maxDocumentIDLength, !id.unicodeScalars.contains(where: { CharacterSet.controlCharacters.contains($0) }) else {
            throw RPCError(.invalidArgument, "document_id: at most \(IndexLimits.maxDocumentIDLength) characters without control characters")
        }
        return id
    }

    static func unknownIndex(_ name: String) -> RPCError {
        RPCError(.notFound, "index: no index named '\(name)' (an index exists once a document is added to it with IndexDocument)")
    }

    /// Runs a store operation; a store failure is INTERNAL with the store's message (UNAVAILABLE
    /// when its server cannot be reached: the call may succeed later).
    static func stored<T>(_ work: () async throws -> T) async throws -> T {
        do {
            return try await work()
        } catch let error as StoreError {
            throw RPCError(error.isUnavailable ? .unavailable : .internal, "the document index failed: \(error.description)")
        }
    }
}
