// The `synthesizeAudio` adaptation step: a model that answers only in text is asked for audio, so
// its answer is spoken by a synthesize-capable provider (local/espeak by default) once complete,
// and the audio follows the text as media events (raw PCM, as the voice produced it).
import Foundation

/// Joins the text of an answer as it streams by; shared with the emit closure.
final class TextCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var parts: [String] = []

    func append(_ text: String) { lock.withLock { parts.append(text) } }
    var text: String { lock.withLock { parts.joined() } }
}

enum SpeechOutput {
    /// The voice of `candidate`'s synthesize step, if it has one.
    static func voice(of candidate: Candidate) -> String? {
        candidate.steps.lazy.compactMap { step -> String? in
            if case let .synthesizeAudio(via) = step { return via }
            return nil
        }.first
    }

    /// Speaks `text` with the model `name`, passing its media and usage on as events. The
    /// original request's `voice` and `speed` labels reach the voice as options.
    static func speak(_ text: String, via name: String, host: PluginHost, original: GenerationRequest,
                      emit: nonisolated(nonsending) @Sendable (GenerationOutput) async throws -> Void) async throws {
        guard let model = host.capabilityMatrix().first(where: { $0.name == name }) else {
            throw ProviderFailure(.unavailable, "\(name), needed to speak the answer, is no longer loaded")
        }
        guard text.contains(where: { !$0.isWhitespace }) else { return } // nothing was said
        var request = GenerationRequest(messages: [ChatMessage(role: .user, parts: [.text(text)])])
        request.operation = .synthesize
        request.outputs = [.audio]
        request.labels = original.labels.filter { ["voice", "speed"].contains($0.key) }
        request.deadline = original.deadline
        request.requestID = original.requestID + "/synthesize"
        let call = try host.startCall(model: model, operation: .synthesize, request: request)
        let end = try await call.read { event in
            switch event {
            case .media, .usage: try await emit(.event(event))
            default: break
            }
        }
        guard end.isOK else {
            throw ProviderFailure(end.retryable ? .unavailable : .internalError, "\(name) failed to speak the answer: \(end.message)")
        }
    }
}
