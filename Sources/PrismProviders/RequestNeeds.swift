// What a request needs from a provider, derived from its content before planning: the operation,
// each input medium with its kind, size and (for PDFs and video) its page count or audio track,
// requested outputs, tools and schema. Inspection reads headers only.
import Foundation
import PrismMedia

/// One input medium as the planner sees it.
public struct InputMedium: Sendable, Equatable {
    public var modality: Modality
    public var bytes: Int
    /// Pages of a PDF; nil for other kinds.
    public var pages: Int?
    /// Seconds of audio or video, when the container says.
    public var seconds: Double?
    /// Whether a video has an audio track.
    public var hasAudio = false
    /// The sniffed type, e.g. "image/png".
    public var mimeType: String

    public init(modality: Modality, bytes: Int, mimeType: String, pages: Int? = nil, seconds: Double? = nil, hasAudio: Bool = false) {
        self.modality = modality
        self.bytes = bytes
        self.mimeType = mimeType
        self.pages = pages
        self.seconds = seconds
        self.hasAudio = hasAudio
    }
}

/// Everything the planner looks at.
public struct RequestNeeds: Sendable, Equatable {
    public var operation: Operation = .generate
    public var media: [InputMedium] = []
    public var outputs: Set<Modality> = [.text]
    public var tools = false
    public var jsonSchema = false
    public var systemPrompt = false

    public init(operation: Operation = .generate, media: [InputMedium] = [], outputs: Set<Modality> = [.text],
                tools: Bool = false, jsonSchema: Bool = false, systemPrompt: Bool = false) {
        self.operation = operation
        self.media = media
        self.outputs = outputs
        self.tools = tools
        self.jsonSchema = jsonSchema
        self.systemPrompt = systemPrompt
    }

    /// Reads a request's media headers (sniffed, never trusting the declared type) and its
    /// options. Throws `invalidArgument` naming the medium that is not what it claims or that
    /// cannot be read, or `resourceExhausted` for one over the gateway's own media limits.
    public static func of(_ request: GenerationRequest, limits: MediaLimits = .standard) throws -> RequestNeeds {
        var needs = RequestNeeds(operation: request.operation)
        needs.outputs = request.outputs.isEmpty ? [.text] : request.outputs
        needs.tools = !request.tools.isEmpty
        needs.jsonSchema = !request.responseSchemaJSON.isEmpty
        needs.systemPrompt = !request.system.isEmpty
        for (index, item) in request.media.enumerated() {
            let label = item.media.name.isEmpty ? "media #\(index + 1)" : "media '\(item.media.name)'"
            let description = MediaInspector.inspect(item.media.data, declaredMime: item.media.mimeType.isEmpty ? nil : item.media.mimeType, limits: limits)
            let format = description.verdict.format
            var medium = InputMedium(modality: .text, bytes: item.media.data.count, mimeType: format.mimeType)
            switch format.kind {
            case .image:
                medium.modality = .image
            case .document:
                medium.modality = .pdf
                guard let pages = description.document?.pages else {
                    throw ProviderFailure(.invalidArgument, "\(label) is a PDF that cannot be read: \(description.problem ?? "no pages")")
                }
                medium.pages = pages
            case .audio:
                medium.modality = .audio
                medium.seconds = description.audio?.duration
            case .video:
                // An MP4 with only sound is audio (MediaInspector looks at the streams).
                if let video = description.video {
                    medium.modality = .video
                    medium.seconds = video.duration
                    medium.hasAudio = video.hasAudio
                } else if let audio = description.audio {
                    medium.modality = .audio
                    medium.seconds = audio.duration
                } else {
                    throw ProviderFailure(.invalidArgument, "\(label) (\(format.rawValue)) cannot be read: \(description.problem ?? "no streams")")
                }
            case .unknown:
                throw ProviderFailure(.invalidArgument, "\(label): declared '\(item.media.mimeType)' but the bytes are no supported image, PDF, audio or video format")
            }
            if let problem = description.problem, medium.modality == .image, description.image == nil {
                throw ProviderFailure(problem.contains("limit") ? .resourceExhausted : .invalidArgument, "\(label): \(problem)")
            }
            needs.media.append(medium)
        }
        return needs
    }

    func count(_ modality: Modality) -> Int { media.filter { $0.modality == modality }.count }
    var modalities: Set<Modality> { Set(media.map(\.modality)) }
}
