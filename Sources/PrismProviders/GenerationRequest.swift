// A generation request as the plugin host sees it: plain Swift values the service fills in from
// prism.v1.GenerateRequest, which the adapter rewrites and the encoder turns into a ProviderRequest.
import Foundation

/// Who said a message.
public enum Role: Int, Sendable {
    case unspecified = 0, user = 1, assistant = 2
}

/// Media as the client sent it (or as the adapter made it): declared type, bytes, optional name;
/// or a URI whose bytes the Generator fetches (MediaFetcher) before anything else looks at it.
public struct MediaInput: Sendable {
    /// The type the client declared; the adapter sniffs the bytes and never trusts it alone.
    public var mimeType: String
    public var data: Data
    public var name: String
    /// Media.uri: where `data` comes from while it is empty; kept once fetched.
    public var uri: String

    public init(mimeType: String, data: Data, name: String = "", uri: String = "") {
        self.mimeType = mimeType
        self.data = data
        self.name = name
        self.uri = uri
    }
}

/// One part of a message.
public indirect enum ContentPart: Sendable {
    case text(String)
    case media(MediaInput)
    case toolCall(id: String, name: String, argumentsJSON: String)
    case toolResult(toolCallID: String, content: [ContentPart], isError: Bool)
}

/// One turn of a conversation.
public struct ChatMessage: Sendable {
    public var role: Role
    public var parts: [ContentPart]

    public init(role: Role, parts: [ContentPart]) {
        self.role = role
        self.parts = parts
    }
}

/// A client-side tool the model may call.
public struct ToolSpec: Sendable {
    public var name: String
    public var description: String
    public var inputSchemaJSON: String

    public init(name: String, description: String, inputSchemaJSON: String) {
        self.name = name
        self.description = description
        self.inputSchemaJSON = inputSchemaJSON
    }
}

/// What the client asked of routing (prism.v1.Route).
public struct RouteRequest: Sendable {
    /// Empty = any capable provider.
    public var provider = ""
    /// "provider/model"; empty = the planner chooses.
    public var model = ""
    /// Models to try in order after the chosen one fails before any content.
    public var fallbacks: [String] = []
    /// ADAPTATION_NATIVE_ONLY: no conversion of inputs, only providers that take them as they are.
    public var nativeOnly = false
    /// How the response cache is used (prism.v1.Route.cache).
    public var cache = CachePolicy.default

    public init(provider: String = "", model: String = "", fallbacks: [String] = [], nativeOnly: Bool = false,
                cache: CachePolicy = .default) {
        self.provider = provider
        self.model = model
        self.fallbacks = fallbacks
        self.nativeOnly = nativeOnly
        self.cache = cache
    }
}

/// One generation request.
public struct GenerationRequest: Sendable {
    public var messages: [ChatMessage]
    /// What is asked: generate (the default), or transcribe / ocr / synthesize through the same
    /// planning, adaptation, retries and fallbacks (the Transcribe and Synthesize RPCs, `prism ocr`).
    public var operation: Operation = .generate
    public var system = ""
    public var tools: [ToolSpec] = []
    public var toolChoice = ""
    public var maxTokens: UInt32 = 0
    public var temperature: Float?
    public var responseSchemaJSON = ""
    /// Requested outputs; empty means text.
    public var outputs: Set<Modality> = []
    public var route = RouteRequest()
    public var labels: [String: String] = [:]
    /// When the answer stops being useful; passed to the plugin and enforced by cancellation.
    public var deadline: Date?
    /// The host's id of the request, for logs on both sides.
    public var requestID = UUID().uuidString
    /// Audio that is still arriving (Transcribe), in place of media in `messages`: a model that
    /// declares streaming input reads it while it arrives; any other gets it whole, as a WAV,
    /// once it has ended.
    public var streamedAudio: StreamedAudio?

    public init(messages: [ChatMessage]) {
        self.messages = messages
    }

    /// Every medium of the request, in order, with where it sits: `inner` is its index in the
    /// content of a tool result (the screenshot an agent's tool returned), nil for a part of its
    /// own. Media are planned, checked and fitted alike wherever they sit (one level deep: a tool
    /// result inside a tool result is not a thing any vendor takes).
    var media: [(message: Int, part: Int, inner: Int?, media: MediaInput)] {
        var result: [(Int, Int, Int?, MediaInput)] = []
        for (m, message) in messages.enumerated() {
            for (p, part) in message.parts.enumerated() {
                switch part {
                case .media(let media):
                    result.append((m, p, nil, media))
                case .toolResult(_, let content, _):
                    for (i, inner) in content.enumerated() {
                        if case .media(let media) = inner { result.append((m, p, i, media)) }
                    }
                default:
                    break
                }
            }
        }
        return result
    }
}
