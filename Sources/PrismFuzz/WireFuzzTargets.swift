// Fuzz targets for the transport: gRPC's message framing, gzip, and whole server connections
// (protocol detection, HTTP/1.1 with gRPC-Web and Connect, HTTP/2 through nghttp2) on an
// EmbeddedChannel, so every byte a client may send reaches the same code a socket would.
import NIOCore
import NIOEmbedded
import PrismProto
@_spi(Fuzzing) import PrismRPC

enum WireFuzzTargets {
    /// The largest message the fuzzed deframer and connections accept: small, so a declared
    /// length past it is refused and nothing the fuzzer sends can make them buffer much.
    static let maxMessageBytes = 64 << 10

    /// Option byte (bit 0: gzip call, the rest: chunking), then a call's DATA bytes.
    static let framing = FuzzTarget(name: "framing", summary: "gRPC length-prefixed deframing (+gzip) of DATA split anywhere") { raw in
        var input = FuzzInput(raw)
        let options = input.byte()
        let result = RPCFuzzing.deframe(input.chunks(seed: options >> 1), gzip: options & 1 == 1,
                                        maxMessageBytes: maxMessageBytes)
        if case .success(let messages) = result {
            for message in messages where message.readableBytes > maxMessageBytes {
                fuzzFailure("deframer returned a \(message.readableBytes)-byte message past the \(maxMessageBytes)-byte limit")
            }
        }
    }

    /// Arbitrary bytes gunzipped with a limit; and compressed, then decompressed back.
    static let gzip = FuzzTarget(name: "gzip", summary: "bounded gzip decompression; compress/decompress round trip") { raw in
        let bytes = Array(raw)
        if let out = try? RPCFuzzing.gunzip(bytes, limit: maxMessageBytes), out.count > maxMessageBytes {
            fuzzFailure("gunzip returned \(out.count) bytes past its \(maxMessageBytes)-byte limit")
        }
        let compressed = RPCFuzzing.gzip(bytes)
        guard let back = try? RPCFuzzing.gunzip(compressed, limit: max(bytes.count, 1)), back == bytes else {
            fuzzFailure("gzip round trip of \(bytes.count) bytes did not give them back")
        }
    }

    /// Option byte (chunking), then what a client writes on a plaintext connection.
    static let connection = FuzzTarget(name: "connection",
                                       summary: "server connection: protocol detection, HTTP/1.1 (gRPC-Web, Connect, pages), HTTP/2") { raw in
        var input = FuzzInput(raw)
        let seed = input.byte()
        let channel = EmbeddedChannel()
        defer {
            // Timers (idle, linger, deadlines) fire as they would in time; a task left pending
            // would keep the channel alive through the loop, which a real loop never does.
            channel.embeddedEventLoop.advanceTime(by: .hours(1))
            _ = try? channel.finish(acceptAlreadyClosed: true)
            channel.embeddedEventLoop.advanceTime(by: .hours(1))
        }
        do {
            try channel.pipeline.syncOperations.addHandler(RPCFuzzing.connectionHandler(router: router, configuration: configuration))
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        } catch {
            fuzzFailure("cannot set up the embedded connection: \(error)")
        }
        for chunk in input.chunks(seed: seed) where channel.isActive {
            // A protocol error closes the channel; the handler reports it as the server would.
            _ = try? channel.writeInbound(channel.allocator.buffer(bytes: chunk))
            channel.embeddedEventLoop.run()
            // What the server answered is read and dropped, so it cannot pile up across chunks.
            while (try? channel.readOutbound(as: ByteBuffer.self)) ?? nil != nil {}
        }
        channel.embeddedEventLoop.run()
    }

    static let configuration: ServerConfiguration = {
        var configuration = ServerConfiguration()
        configuration.maxReceiveMessageBytes = maxMessageBytes
        configuration.maxHeaderListBytes = 4 << 10
        configuration.cors = CORSPolicy(allowedOrigins: ["https://app.example"])
        return configuration
    }()

    /// Methods answered on the event loop (an EmbeddedChannel has no other thread): the health
    /// check, which the JSON codec knows, and an echo, plus a page for GET.
    static let router: Router = {
        var router = Router()
        var health = ServiceDefinition(name: "grpc.health.v1.Health")
        health.add("Check", .unaryOnEventLoop { request, _ in
            // The request must decode; SERVING (field 1 = 1) is the answer.
            _ = try ProtoMessage(grpc__health__v1__health_check_request__init, buffer: request)
            return ByteBuffer(bytes: [0x08, 0x01])
        })
        router.register(health)
        var echo = ServiceDefinition(name: "fuzz.Echo")
        echo.add("Echo", .unaryOnEventLoop { request, context in
            context.addTrailer("x-echo-bytes", String(request.readableBytes))
            return request
        })
        echo.add("Fail", .unaryOnEventLoop { _, _ in throw RPCError(.invalidArgument, "fuzz: refused") })
        router.register(echo)
        router.page("/healthz") { HTTPPage(body: "ok\n", etag: "\"1\"") }
        router.jsonCodec = HealthJSONCodec()
        return router
    }()
}

/// Connect's JSON codec for the health check, through ProtoJSON as the server's codec does.
private struct HealthJSONCodec: JSONCodec {
    func request(fromJSON json: ByteBuffer, path: String) throws -> ByteBuffer {
        guard let method = ProtoMethods.embedded.method(path: path) else { throw RPCError(.unimplemented, path) }
        do {
            return ByteBuffer(bytes: try ProtoJSON.decode(method.input, json: json))
        } catch {
            throw RPCError(.invalidArgument, "\(error)")
        }
    }

    func response(toJSON message: ByteBuffer, path: String) throws -> ByteBuffer {
        guard let method = ProtoMethods.embedded.method(path: path) else { throw RPCError(.internal, path) }
        return ByteBuffer(string: try ProtoJSON.encode(method.output, binary: message))
    }
}
