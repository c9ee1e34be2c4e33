// A generation request as the plugin host sees it: plain Swift values the service fills in from
// prism.v1.GenerateRequest, which the adapter rewrites and the encoder turns into a ProviderRequest.
import Foundation

/// Who said a message.
public enum Role: Int, Sendable {
    case unspecified = 0, user = 1, assistant = 2
}

/// Media as the client sent it (or as the adapter made it): declared type, bytes, optional name.
public struct MediaInput: Sendable {
    /// The type the client declared; the adapter sniffs the bytes and never trusts it alone.
    public var mimeType: String
    public var data: Data
    public var name: String

    public init(mimeType: String, data: Data, name: String = "") {
        self.mimeType = mimeType
        self.data = data
        self.name = name
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

    public init(provider: String = "", model: String = "", fallbacks: [String] = [], nativeOnly: Bool = false) {
        self.provider = provider
        self.model = model
        self.fallbacks = fallbacks
        self.nativeOnly = nativeOnly
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

    public init(messages: [ChatMessage]) {
        self.messages = messages
    }

    /// Every medium of the request, in order, with where it sits.
    var media: [(message: Int, part: Int, media: MediaInput)] {
        var result: [(Int, Int, MediaInput)] = []
        for (m, message) in messages.enumerated() {
            for (p, part) in message.parts.enumerated() {
                if case .media(let media) = part { result.append((m, p, media)) }
            }
        }
        return result
    }
}
