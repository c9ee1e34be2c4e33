// Shared by the provider tests: the plugins SwiftPM built (copied into private folders under the
// names the host loads), a real gateway on an ephemeral port, and Generate requests and events
// built and read with the real protobuf-c messages.
import Foundation
import Logging
import NIOCore
import PrismProto
import PrismProviders
import PrismRPC
import PrismServer
import XCTest

struct MissingPlugin: Error, CustomStringConvertible {
    let description: String
}

enum Plugins {
    /// A host over `folder`, unwatched (tests rescan by hand) and quiet; the caller starts it.
    static func host(_ folder: String) throws -> PluginHost {
        var options = PluginHost.Options(directories: [folder])
        options.watch = false
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return try PluginHost(options: options, logger: logger)
    }

    /// The build folder: the one holding this test binary, where SwiftPM puts the plugin products.
    static var buildFolder: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var folder = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // The xctest bundle may be a folder on some toolchains: walk up to the one with the plugins.
        for _ in 0..<4 where !FileManager.default.fileExists(atPath: folder.appendingPathComponent("libprism-plugin-example.so").path) {
            folder.deleteLastPathComponent()
        }
        return folder.path
    }

    static func built(_ name: String) throws -> String {
        let path = "\(buildFolder)/\(name)"
        guard FileManager.default.fileExists(atPath: path) else {
            throw MissingPlugin(description: "\(name) is not built in \(buildFolder): run `swift build` (it builds the plugin products) before `swift test`")
        }
        return path
    }

    static let example = "libprism-plugin-example.so"
    static let testkit = "libprismtest-plugin-testkit.so"
    static let badABI = "libprismtest-plugin-badabi.so"

    /// A new private folder (mode 0700).
    static func folder() throws -> String {
        let path = NSTemporaryDirectory() + "prism-plugin-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        return path
    }

    /// Copies a built plugin into `folder` as `name` (mode 0755), the way a user drops one in.
    @discardableResult
    static func install(_ built: String, into folder: String, as name: String) throws -> String {
        let source = try Self.built(built)
        let target = "\(folder)/\(name)"
        let temporary = "\(folder)/.\(name).tmp"
        try? FileManager.default.removeItem(atPath: temporary)
        try FileManager.default.copyItem(atPath: source, toPath: temporary)
        chmod(temporary, 0o755)
        // rename(2): the watcher sees one IN_MOVED_TO of a complete file.
        guard rename(temporary, target) == 0 else { throw MissingPlugin(description: "rename to \(target) failed") }
        return target
    }
}

/// A running gateway with its own plugin folder, and a client connected to it.
final class TestGateway {
    let gateway: PrismGateway
    let client: RPCClient
    let folder: String

    init(folder: String, watch: Bool = true, configure: (inout ServerSettings) -> Void = { _ in }) async throws {
        var settings = ServerSettings()
        settings.rpc.port = 0
        settings.pluginPath = [folder]
        settings.dataDirectory = folder + "-data"
        configure(&settings)
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        gateway = try PrismGateway(settings: settings, logger: logger)
        try await gateway.start()
        client = try await RPCClient.connect(host: "127.0.0.1", port: gateway.server.localAddress!.port!)
        self.folder = folder
    }

    func stop() async {
        await client.close()
        await gateway.shutdown()
        try? FileManager.default.removeItem(atPath: folder)
        try? FileManager.default.removeItem(atPath: folder + "-data")
    }

    func listProviders() async throws -> ProtoMessage<Prism__V1__ListProvidersResponse> {
        let b = ProtoBuilder()
        var body = ByteBuffer()
        b.pack(b.message(prism__v1__list_providers_request__init), into: &body)
        let reply = try await client.unary("/prism.v1.Prism/ListProviders", body)
        return try ProtoMessage(prism__v1__list_providers_response__init, buffer: reply)
    }

    /// (plugin file, state, reason, model ids) of every provider listed.
    func providers() async throws -> [(plugin: String, state: Prism__V1__ProviderState, reason: String, models: [String])] {
        let response = try await listProviders()
        return withExtendedLifetime(response) {
            UnsafeBufferPointer(start: response.pointee.providers, count: response.pointee.n_providers).compactMap { $0 }.map { p in
                (String(protoC: p.pointee.plugin), p.pointee.state, String(protoC: p.pointee.state_reason),
                 UnsafeBufferPointer(start: p.pointee.models, count: p.pointee.n_models).compactMap { $0 }.map { String(protoC: $0.pointee.id) })
            }
        }
    }

    /// Polls ListProviders until `condition` holds, for up to `seconds`.
    func waitFor(seconds: Double = 3, _ what: String, _ condition: ([(plugin: String, state: Prism__V1__ProviderState, reason: String, models: [String])]) -> Bool) async throws {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if condition(try await providers()) { return }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        let last = try await providers()
        XCTFail("timed out waiting for: \(what); providers: \(last)")
    }

    /// Starts a Generate call.
    func generate(_ request: GenerateRequestBuilder, timeout: TimeAmount? = nil) async throws -> ClientCall {
        try await client.serverStreaming("/prism.v1.Prism/Generate", request.bytes(), timeout: timeout)
    }

    /// Runs a Generate call to its end: the events and the status.
    func generateAll(_ request: GenerateRequestBuilder, timeout: TimeAmount? = nil) async throws -> (events: [Event], status: Status) {
        let call = try await generate(request, timeout: timeout)
        var events: [Event] = []
        do {
            for try await reply in call.responses { events.append(try Event(reply)) }
        } catch is RPCError {}
        return (events, await call.status())
    }
}

/// A GenerateRequest under construction: text and media parts in one user message, a route.
struct GenerateRequestBuilder {
    var parts: [(text: String?, media: (mime: String, data: Data, name: String)?)] = []
    var model = ""
    var provider = ""
    var fallbacks: [String] = []
    var nativeOnly = false

    init(_ text: String) { parts = [(text, nil)] }

    func with(_ data: Data, mime: String = "", name: String = "") -> Self {
        var copy = self
        copy.parts.append((nil, (mime, data, name)))
        return copy
    }

    func routed(to model: String, fallbacks: [String] = [], nativeOnly: Bool = false) -> Self {
        var copy = self
        copy.model = model
        copy.fallbacks = fallbacks
        copy.nativeOnly = nativeOnly
        return copy
    }

    func bytes() -> ByteBuffer {
        let b = ProtoBuilder()
        let parts = self.parts.map { item -> UnsafeMutablePointer<Prism__V1__Part> in
            let p = b.message(prism__v1__part__init)
            if let text = item.text {
                p.pointee.kind_case = PRISM__V1__PART__KIND_TEXT
                p.pointee.text = b.string(text)
            } else if let media = item.media {
                let m = b.message(prism__v1__media__init)
                m.pointee.mime_type = b.string(media.mime)
                m.pointee.data = media.data.withUnsafeBytes { b.bytes($0) }
                m.pointee.name = b.string(media.name)
                p.pointee.kind_case = PRISM__V1__PART__KIND_MEDIA
                p.pointee.media = m
            }
            return p
        }
        let message = b.message(prism__v1__message__init)
        message.pointee.role = PRISM__V1__ROLE__ROLE_USER
        message.pointee.n_parts = parts.count
        message.pointee.parts = b.array(parts)
        let request = b.message(prism__v1__generate_request__init)
        request.pointee.n_messages = 1
        request.pointee.messages = b.array([message])
        let route = b.message(prism__v1__route__init)
        route.pointee.model = b.string(model)
        route.pointee.provider = b.string(provider)
        route.pointee.n_fallbacks = fallbacks.count
        route.pointee.fallbacks = b.strings(fallbacks)
        route.pointee.adaptation = nativeOnly ? PRISM__V1__ADAPTATION__ADAPTATION_NATIVE_ONLY : PRISM__V1__ADAPTATION__ADAPTATION_AUTO
        request.pointee.route = route
        var buffer = ByteBuffer()
        b.pack(request, into: &buffer)
        return buffer
    }
}

/// A decoded GenerateEvent, as a test wants to compare it.
enum Event: Equatable {
    case routed(model: String, adaptations: [String], attempt: Int)
    case text(String)
    case usage(input: UInt64, output: UInt64, cost: UInt64)
    case finished(Int)
    case other

    init(_ buffer: ByteBuffer) throws {
        let e = try ProtoMessage(prism__v1__generate_event__init, buffer: buffer)
        self = withExtendedLifetime(e) {
            let v = e.pointee
            switch v.event_case {
            case PRISM__V1__GENERATE_EVENT__EVENT_ROUTED:
                let r = v.routed!.pointee
                return .routed(model: String(protoC: r.model),
                               adaptations: UnsafeBufferPointer(start: r.adaptations, count: r.n_adaptations).map { String(protoC: $0) },
                               attempt: Int(r.attempt))
            case PRISM__V1__GENERATE_EVENT__EVENT_TEXT: return .text(String(protoC: v.text!.pointee.text))
            case PRISM__V1__GENERATE_EVENT__EVENT_USAGE:
                let u = v.usage!.pointee
                return .usage(input: u.input_tokens, output: u.output_tokens, cost: u.cost_usd_micros)
            case PRISM__V1__GENERATE_EVENT__EVENT_FINISHED: return .finished(Int(v.finished!.pointee.stop_reason.rawValue))
            default: return .other
            }
        }
    }

    var text: String? { if case .text(let t) = self { return t }; return nil }
}

/// Test media made in code.
enum TestMedia {
    /// A solid-colour RGB PNG of `width` × `height`.
    static func png(width: Int, height: Int) -> Data {
        func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
            let typed = Array(type.utf8) + body
            return be32(UInt32(body.count)) + typed + be32(crc(typed))
        }
        var raw: [UInt8] = []
        for _ in 0..<height { raw.append(0); for _ in 0..<width { raw += [200, 80, 40] } }
        let ihdr = be32(UInt32(width)) + be32(UInt32(height)) + [8, 2, 0, 0, 0]
        return Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", ihdr) + chunk("IDAT", zlibStored(raw)) + chunk("IEND", []))
    }

    /// A PDF of `pages` US-letter pages, each saying "Page N" in Helvetica.
    static func pdf(pages: Int) -> Data {
        var objects: [String] = ["<< /Type /Catalog /Pages 2 0 R >>"]
        let kids = (0..<pages).map { "\(4 + 2 * $0) 0 R" }.joined(separator: " ")
        objects.append("<< /Type /Pages /Kids [\(kids)] /Count \(pages) >>")
        objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
        for page in 0..<pages {
            objects.append("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents \(5 + 2 * page) 0 R >>")
            let stream = "BT /F1 36 Tf 72 700 Td (Page \(page + 1)) Tj ET"
            objects.append("<< /Length \(stream.utf8.count) >>\nstream\n\(stream)\nendstream")
        }
        var out = "%PDF-1.4\n"
        var offsets: [Int] = []
        for (i, object) in objects.enumerated() {
            offsets.append(out.utf8.count)
            out += "\(i + 1) 0 obj\n\(object)\nendobj\n"
        }
        let xref = out.utf8.count
        out += "xref\n0 \(objects.count + 1)\n0000000000 65535 f \n"
        for offset in offsets { out += String(format: "%010d 00000 n \n", offset) }
        out += "trailer\n<< /Size \(objects.count + 1) /Root 1 0 R >>\nstartxref\n\(xref)\n%%EOF\n"
        return Data(out.utf8)
    }

    /// One second of 16 kHz mono silence as WAV.
    static func wav(seconds: Double = 1) -> Data {
        let samples = Int(16_000 * seconds)
        func le32(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)] }
        func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
        let data = [UInt8](repeating: 0, count: samples * 2)
        let fmt = le16(1) + le16(1) + le32(16_000) + le32(32_000) + le16(2) + le16(16)
        let body = Array("WAVE".utf8) + Array("fmt ".utf8) + le32(16) + fmt + Array("data".utf8) + le32(UInt32(data.count)) + data
        return Data(Array("RIFF".utf8) + le32(UInt32(body.count)) + body)
    }

    private static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

    private static func crc(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        return ~c
    }

    /// zlib with stored (uncompressed) blocks: valid, and needs no compressor.
    private static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let n = min(65_535, data.count - offset)
            let last: UInt8 = offset + n >= data.count ? 1 : 0
            out += [last, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            out += data[offset..<offset + n]
            offset += n
        } while offset < data.count
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in data { a = (a + UInt32(byte)) % 65_521; b = (b + a) % 65_521 }
        return out + be32(b << 16 | a)
    }
}
