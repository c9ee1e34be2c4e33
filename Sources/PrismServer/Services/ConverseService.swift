// prism.v1.Prism/Converse: an agent loop with client-side tools on one bidirectional stream. The
// `start` message (a GenerateRequest) opens the conversation; each model turn is one
// Generator.generate call (planning, adaptation, retries and fallbacks before its first content)
// streamed as GenerateEvents, `routed` first and `usage` + `finished` last. A turn that ends with
// tool calls waits for the client's `tool_results`; one that ends otherwise waits for a `user`
// message; a half-close between turns ends the stream OK. The history lives in a Conversation.
import Foundation
import NIOCore
import PrismProto
import PrismProviders
import PrismRPC

enum ConverseService {
    /// The bidirectional handler of Converse, bounded by `limits`.
    static func handler(_ generator: Generator, limits: ConverseLimits) -> RPCHandler {
        .bidirectional { requests, writer, context in
            guard let first = try await next(requests, within: nil) else {
                throw RPCError(.invalidArgument, "start: the stream ended before its start message")
            }
            let message = try decodeRequest(prism__v1__converse_request__init, first)
            guard message.pointee.turn_case == PRISM__V1__CONVERSE_REQUEST__TURN_START, let start = message.pointee.start?.pointee else {
                throw RPCError(.invalidArgument, "start: the first ConverseRequest must be start (a GenerateRequest), not \(name(of: message.pointee.turn_case))")
            }
            var request = try withExtendedLifetime(message) { try GenerateService.generationRequest(start) }
            request.deadline = GenerateService.deadline(context)
            var conversation = try Conversation(start: request, limits: limits)

            while true {
                // Media by URI are fetched once, when they join the history, not every turn.
                let fetched: [String]
                do {
                    fetched = try await conversation.fetchMedia(with: generator.fetcher)
                } catch let failure as ProviderFailure {
                    throw GenerateService.rpcError(failure, context)
                }
                let (turn, note) = try conversation.startTurn()
                let answer = try await run(turn, notes: fetched + (note.map { [$0] } ?? []), generator: generator, writer: writer, context: context)
                try conversation.recordAnswer(text: answer.text, toolCalls: answer.toolCalls)

                // The client's next message: results for this turn's tool calls (within the
                // configured wait), or, after an end of turn, a user message or the end.
                let awaiting = !conversation.awaited.isEmpty
                let wait = awaiting ? limits.toolResultTimeoutSeconds : nil
                guard let body = try await next(requests, within: wait, awaiting: conversation) else { return }
                let incoming = try decodeRequest(prism__v1__converse_request__init, body)
                let m = incoming.pointee
                switch m.turn_case {
                case PRISM__V1__CONVERSE_REQUEST__TURN_TOOL_RESULTS where awaiting:
                    let results = try withExtendedLifetime(incoming) { try toolResults(m.tool_results?.pointee) }
                    try conversation.addToolResults(try await offload {
                        try results.map { r in (id: r.id, content: try r.content.map { try checked($0.part, $0.field) }, isError: r.isError) }
                    })
                case PRISM__V1__CONVERSE_REQUEST__TURN_USER where !awaiting:
                    let user = try withExtendedLifetime(incoming) { try userMessage(m.user?.pointee) }
                    try conversation.addUser(ChatMessage(role: .user, parts: try await offload { try user.map { try checked($0.part, $0.field) } }))
                case PRISM__V1__CONVERSE_REQUEST__TURN_START:
                    throw RPCError(.invalidArgument, "start: sent twice; the start message comes once, first")
                case PRISM__V1__CONVERSE_REQUEST__TURN_TOOL_RESULTS:
                    throw RPCError(.invalidArgument, "tool_results: no tool calls await results (turn \(conversation.turns) ended without any); send a user message")
                case PRISM__V1__CONVERSE_REQUEST__TURN_USER:
                    throw RPCError(.invalidArgument, "user: the tool calls of turn \(conversation.turns) (\(ids(conversation))) await their results; send tool_results first")
                default:
                    throw RPCError(.invalidArgument, "turn: a ConverseRequest with none of start, user, tool_results set")
                }
            }
        }
    }

    /// What one turn's answer adds to the history.
    struct TurnAnswer {
        var text = ""
        var toolCalls: [(id: String, name: String, argumentsJSON: String)] = []
    }

    /// Runs one model turn, relaying its events; `notes` (media fetched, images elided) join every `routed`.
    /// Runs in the handler's task: a client's cancellation or a broken stream cancels that task,
    /// and with it the plugin call.
    private static func run(_ request: GenerationRequest, notes: [String], generator: Generator,
                            writer: ResponseWriter, context: ServerCallContext) async throws -> TurnAnswer {
        let answer = LockedBox(TurnAnswer())
        do {
            try await generator.generate(request, relayExecutor: EventLoopTaskExecutor(context.eventLoop)) { output in
                switch output {
                case .routed(var info):
                    answer.withLockedValue { $0 = TurnAnswer() }  // a retry or fallback starts over
                    info.adaptations.append(contentsOf: notes)
                    try await GenerateService.write(.routed(info), to: writer)
                    return
                case .event(.text(let text)):
                    answer.withLockedValue { $0.text += text }
                case let .event(.toolCall(id, name, arguments)):
                    answer.withLockedValue { $0.toolCalls.append((id, name, arguments)) }
                default:
                    break
                }
                try await GenerateService.write(output, to: writer)
            }
        } catch let failure as ProviderFailure {
            throw GenerateService.rpcError(failure, context)
        }
        return answer.withLockedValue { $0 }
    }

    /// The next request message, nil at the client's half-close. With `seconds`, waiting for
    /// the tool results of `conversation`: past it, DEADLINE_EXCEEDED naming the limit and the
    /// calls still unanswered.
    private static func next(_ requests: RequestStream, within seconds: Double?, awaiting conversation: Conversation? = nil) async throws -> ByteBuffer? {
        guard let seconds else {
            var incoming = requests.makeAsyncIterator()
            return try await incoming.next()
        }
        let waited = conversation.map { "tool calls \(ids($0)) of turn \($0.turns)" } ?? "tool calls"
        return try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
            group.addTask {
                var incoming = requests.makeAsyncIterator()
                return try await incoming.next()
            }
            group.addTask {
                try await Task.sleep(nanoseconds: UInt64(seconds * 1_000_000_000))
                throw RPCError(.deadlineExceeded, "converse.tool_result_timeout_seconds: no tool_results for the \(waited) within \(seconds) s")
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    private static func ids(_ conversation: Conversation) -> String {
        conversation.awaited.map { "'\($0.id)'" }.joined(separator: ", ")
    }

    private static func name(of turn: Prism__V1__ConverseRequest__TurnCase) -> String {
        switch turn {
        case PRISM__V1__CONVERSE_REQUEST__TURN_USER: return "user"
        case PRISM__V1__CONVERSE_REQUEST__TURN_TOOL_RESULTS: return "tool_results"
        default: return "an empty message"
        }
    }

    // MARK: - Decoding, with every medium checked as it arrives

    /// A part as decoded, with the field that names it in errors.
    typealias FieldPart = (part: ContentPart, field: String)

    /// The results of a `tool_results` message: text and media only (media are checked after).
    private static func toolResults(_ message: Prism__V1__ToolResults?) throws -> [(id: String, content: [FieldPart], isError: Bool)] {
        guard let message else { return [] }
        return try elements(message.results, message.n_results).enumerated().map { i, r in
            let content = try elements(r.pointee.content, r.pointee.n_content).enumerated().map { j, p -> FieldPart in
                let field = "tool_results.results[\(i)].content[\(j)]"
                let part = try GenerateService.part(p.pointee, field)
                switch part {
                case .text, .media: return (part, field)
                case .toolCall, .toolResult:
                    throw RPCError(.invalidArgument, "\(field): a tool result holds text and media, not tool calls or results")
                }
            }
            return (String(protoC: r.pointee.tool_call_id), content, r.pointee.is_error != 0)
        }
    }

    /// The parts of a `user` message (the user's role, unspecified taken as user; some content).
    private static func userMessage(_ message: Prism__V1__Message?) throws -> [FieldPart] {
        guard let message, message.n_parts > 0 else { throw RPCError(.invalidArgument, "user.parts: the user message is empty") }
        guard message.role != PRISM__V1__ROLE__ROLE_ASSISTANT else {
            throw RPCError(.invalidArgument, "user.role: ROLE_ASSISTANT; a user message comes from the user (the model's turns are the server's)")
        }
        return try elements(message.parts, message.n_parts).enumerated().map { j, p in
            (try GenerateService.part(p.pointee, "user.parts[\(j)]"), "user.parts[\(j)]")
        }
    }

    /// A medium sniffed and inspected as Generate's are (the planner's own check, reused), so a
    /// bad screenshot is refused naming its field; it keeps its sniffed type. Other parts pass.
    /// Reads media headers: call through `offload`.
    private static func checked(_ part: ContentPart, _ field: String) throws -> ContentPart {
        guard case .media(var media) = part else { return part }
        // A medium by URI is checked once fetched, before the turn that first sends it.
        if media.data.isEmpty && !media.uri.isEmpty { return part }
        do {
            let needs = try RequestNeeds.of(GenerationRequest(messages: [ChatMessage(role: .user, parts: [part])]))
            if let sniffed = needs.media.first?.mimeType { media.mimeType = sniffed }
            return .media(media)
        } catch let failure as ProviderFailure {
            throw RPCError(failure.code == .resourceExhausted ? .resourceExhausted : .invalidArgument, "\(field): \(failure.message)")
        }
    }
}
