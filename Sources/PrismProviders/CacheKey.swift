// The response cache's key: SHA-256 (libcrypto's EVP) of a canonical encoding of the request as
// it is sent to the chosen model, after adaptation. Media count by the hash of their fitted bytes
// and type, so two uploads of one photo that fit to the same bytes share an entry; labels,
// request ids, deadlines and media names do not count (they do not change the answer).
import COpenSSL
import Foundation

enum CacheKey {
    /// Bumped whenever the encoding below changes, so old entries are never misread as matches.
    static let version = "prism-response-cache/1"

    /// The key of `request` (adapted) as `model` will receive it for `operation`.
    static func of(_ request: GenerationRequest, model: String, operation: Operation) -> Data {
        let digest = Digest()
        digest.field("v", version)
        digest.field("model", model)
        digest.field("operation", "\(operation.rawValue)")
        digest.field("system", request.system)
        for message in request.messages {
            digest.field("message", "\(message.role.rawValue)")
            for part in message.parts { add(part, to: digest) }
        }
        for tool in request.tools {
            digest.field("tool", tool.name)
            digest.field("tool.description", tool.description)
            digest.field("tool.schema", tool.inputSchemaJSON)
        }
        digest.field("tool_choice", request.toolChoice)
        digest.field("schema", request.responseSchemaJSON)
        digest.field("max_tokens", "\(request.maxTokens)")
        // By bit pattern: 0.7 and 0.70000005 are different requests to the vendor.
        digest.field("temperature", request.temperature.map { "\($0.bitPattern)" } ?? "unset")
        digest.field("outputs", request.outputs.sorted().map { "\($0.rawValue)" }.joined(separator: ","))
        return digest.finish()
    }

    private static func add(_ part: ContentPart, to digest: Digest) {
        switch part {
        case .text(let text):
            digest.field("text", text)
        case .media(let media):
            digest.field("media", media.mimeType)
            digest.field("media.sha256", sha256(media.data))
        case let .toolCall(id, name, arguments):
            digest.field("tool_call", id)
            digest.field("tool_call.name", name)
            digest.field("tool_call.arguments", arguments)
        case let .toolResult(id, content, isError):
            digest.field("tool_result", id)
            digest.field("tool_result.error", isError ? "1" : "0")
            for inner in content { add(inner, to: digest) }
            digest.field("tool_result.end", "")
        }
    }

    /// SHA-256 of `data`.
    static func sha256(_ data: Data) -> Data {
        let digest = Digest()
        digest.update(data)
        return digest.finish()
    }

    /// An EVP SHA-256 context fed length-prefixed fields, so no two field lists encode alike.
    final class Digest {
        private let context: OpaquePointer

        init() {
            context = EVP_MD_CTX_new()
            EVP_DigestInit_ex(context, EVP_sha256(), nil)
        }

        deinit { EVP_MD_CTX_free(context) }

        // Strings are fed as their UTF-8 bytes in place: a Data per tag and value cost more than
        // the hashing.
        func field(_ tag: String, _ value: String) {
            var value = value
            value.withUTF8 { field(tag, UnsafeRawBufferPointer($0)) }
        }

        func field(_ tag: String, _ value: Data) {
            value.withUnsafeBytes { field(tag, $0) }
        }

        private func field(_ tag: String, _ value: UnsafeRawBufferPointer) {
            var tag = tag
            tag.withUTF8 { update(UnsafeRawBufferPointer($0)) }
            var length = UInt64(value.count).bigEndian
            withUnsafeBytes(of: &length) { update($0) }
            update(value)
        }

        func update(_ data: Data) {
            data.withUnsafeBytes { update($0) }
        }

        private func update(_ bytes: UnsafeRawBufferPointer) {
            if bytes.count > 0 { _ = EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) }
        }

        func finish() -> Data {
            var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
            var length: UInt32 = 0
            EVP_DigestFinal_ex(context, &out, &length)
            return Data(out.prefix(Int(length)))
        }
    }
}
