// HTTP through the host (ABI 2.0): a call's exchanges run on its I/O loop, their responses
// come to closures there. `stream(_:decoding:)` serves a streamed answer as a codec; work that
// is written blocking runs in `runBlocking` with a `BlockingHTTP` that waits for the loop.
import CPrismPlugin
import Foundation

/// A streamed answer's decoder: fed body pieces as they arrive, then the end.
public protocol ResponseDecoder {
    /// Body bytes, after the head is known, lent for the duration of the call; false stops the
    /// exchange.
    mutating func receive(_ head: HTTPResponseHead, _ chunk: UnsafeRawBufferPointer) -> Bool
    /// The whole response arrived: emit what is left and finish the call, or throw its failure.
    mutating func end(_ head: HTTPResponseHead) throws
    /// The exchange failed: the failure to finish the call with.
    func failure(for error: HTTPTransferError) -> CallFailure
}

/// One exchange's closures and what arrived so far; the ctx of its prism_http_handler, retained
/// until on_done. Touched only on the call's I/O loop (the host runs every callback there).
private final class Exchange {
    /// Dropped before `onEnd` runs: a blocked caller resumes then, and may end the life of what
    /// its body handler captured (withoutActuallyEscaping checks that nothing kept it).
    var onBody: ((HTTPResponseHead, UnsafeRawBufferPointer) -> Bool)?
    let onEnd: (Result<HTTPResponseHead, HTTPTransferError>) -> Void
    var head = HTTPResponseHead(status: 0, headers: [:])
    var stopped = false

    init(onBody: @escaping (HTTPResponseHead, UnsafeRawBufferPointer) -> Bool, onEnd: @escaping (Result<HTTPResponseHead, HTTPTransferError>) -> Void) {
        self.onBody = onBody
        self.onEnd = onEnd
    }
}

private func exchange(_ ctx: UnsafeMutableRawPointer?) -> Exchange {
    Unmanaged<Exchange>.fromOpaque(ctx!).takeUnretainedValue()
}

private let handlerTable = prism_http_handler(
    on_head: { ctx, status, headers, count in
        let e = exchange(ctx)
        var fields: [String: String] = [:]
        for i in 0..<count {
            guard let name = headers?[i].name, let value = headers?[i].value else { continue }
            fields[String(cString: name)] = String(cString: value)
        }
        e.head = HTTPResponseHead(status: Int(status), headers: fields)
        return 0
    },
    on_body: { ctx, data, len in
        let e = exchange(ctx)
        // The host's bytes, lent for this call: no copy unless the receiver keeps them.
        let chunk = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : len)
        if e.onBody?(e.head, chunk) ?? false { return 0 }
        e.stopped = true
        return 1
    },
    on_done: { ctx, status, message in
        let unmanaged = Unmanaged<Exchange>.fromOpaque(ctx!)
        let e = unmanaged.takeUnretainedValue()
        defer { unmanaged.release() }
        e.onBody = nil
        switch CallStatus(rawValue: status.rawValue) {
        case .ok?: e.onEnd(.success(e.head))
        case .cancelled? where e.stopped: e.onEnd(.failure(.stopped))
        case .cancelled?: e.onEnd(.failure(.cancelled))
        case .deadlineExceeded?: e.onEnd(.failure(.timedOut))
        default: e.onEnd(.failure(.transport(message.map { String(cString: $0) } ?? "the exchange failed (status \(status.rawValue))")))
        }
    })

extension ProviderCall {
    /// Starts `request` on the host; `onBody` gets body pieces as they arrive, lent for the
    /// duration of the call (false stops the exchange), `onEnd` the outcome, both on the call's I/O loop, where they must not block.
    /// A request the host refuses at once ends through `onEnd` too, on this thread.
    public func send(_ request: HTTPRequest, onBody: @escaping (HTTPResponseHead, UnsafeRawBufferPointer) -> Bool,
                     onEnd: @escaping (Result<HTTPResponseHead, HTTPTransferError>) -> Void) {
        startedWork()
        let ctx = Unmanaged.passRetained(Exchange(onBody: onBody, onEnd: onEnd))
        let headers = CallTrace.adding(trace, to: request.headers)
        // C strings for every header, alive until http_start has copied them.
        let names = headers.map { strdup($0.0) }
        let values = headers.map { strdup($0.1) }
        defer { (names + values).forEach { free($0) } }
        var lines = (0..<headers.count).map { prism_http_header(name: names[$0], value: values[$0]) }
        let status = request.method.withCString { method in
            request.url.withCString { url in
                request.body.withUnsafeBytes { body in
                    lines.withUnsafeMutableBufferPointer { lines in
                        var r = prism_http_request(method: method, url: url, headers: lines.baseAddress, header_count: lines.count,
                                                   body: body.bindMemory(to: UInt8.self).baseAddress, body_len: body.count,
                                                   timeout_ms: request.timeoutMilliseconds)
                        return withUnsafePointer(to: handlerTable) { handler in host.pointee.http_start!(call, &r, handler, ctx.toOpaque()) }
                    }
                }
            }
        }
        guard status.rawValue == CallStatus.ok.rawValue else {
            ctx.release()
            switch CallStatus(rawValue: status.rawValue) {
            case .cancelled?: onEnd(.failure(.cancelled))
            default: onEnd(.failure(.transport("the host refused the request to \(request.url) (status \(status.rawValue))")))
            }
            return
        }
    }

    /// Serves a streamed answer with `decoder`, without blocking: the call finishes when the
    /// response ends (the decoder's `end`) or fails (its `failure`).
    public func stream<Decoder: ResponseDecoder>(_ request: HTTPRequest, decoding decoder: Decoder) {
        let box = DecoderBox(decoder)
        send(request, onBody: { head, chunk in box.decoder.receive(head, chunk) }, onEnd: { [self] result in
            switch result {
            case .success(let head):
                do { try box.decoder.end(head) } catch let failure as CallFailure { fail(failure) } catch { finish(.internalError, "\(error)") }
            case .failure(let error):
                fail(box.decoder.failure(for: error))
            }
        })
    }

    /// Runs `work` on the host's blocking pool (ABI 2.0), where it may block, with an HTTP client
    /// that waits for its exchanges. A thrown CallFailure fails the call; `work` that returns
    /// without finishing finishes it as INTERNAL.
    public func runBlocking(_ work: @escaping (BlockingHTTP) throws -> Void) {
        final class Work {
            let call: ProviderCall
            let body: (BlockingHTTP) throws -> Void
            init(_ call: ProviderCall, _ body: @escaping (BlockingHTTP) throws -> Void) {
                self.call = call
                self.body = body
            }
        }
        startedWork()
        let ctx = Unmanaged.passRetained(Work(self, work))
        let status = host.pointee.run_blocking!(call, { ctx in
            let work = Unmanaged<Work>.fromOpaque(ctx!).takeRetainedValue()
            work.call.serving { try work.body(BlockingHTTP(call: work.call)) }
        }, ctx.toOpaque())
        if status.rawValue != CallStatus.ok.rawValue {
            ctx.release()
            finish(status.rawValue == CallStatus.unavailable.rawValue ? .unavailable : .failedPrecondition,
                   "the host's blocking pool did not take the call (status \(status.rawValue))")
        }
    }

    /// Runs `body` as (a step of) the call's service: a thrown failure fails the call, and
    /// returning without finishing and without starting an exchange or blocking work that will
    /// finish it is a plugin bug, finished as INTERNAL.
    func serving(_ body: () throws -> Void) {
        let before = workStarted
        do {
            try body()
            if !isFinished && workStarted == before { finish(.internalError, "the plugin returned without finishing the call") }
        } catch let failure as CallFailure {
            fail(failure)
        } catch {
            finish(.internalError, "\(error)")
        }
    }
}

/// A decoder shared by one exchange's closures, all run on the call's I/O loop.
private final class DecoderBox<Decoder: ResponseDecoder> {
    var decoder: Decoder
    init(_ decoder: Decoder) { self.decoder = decoder }
}

/// Blocking HTTP for work running in `ProviderCall.runBlocking`: each request runs on the call's
/// I/O loop while this thread waits. Never use it on the loop itself (it would wait for itself).
public struct BlockingHTTP {
    let call: ProviderCall

    /// Runs `request` to its end. `onBody` gets body bytes as they arrive (lent for the call), on
    /// the call's I/O loop while this thread waits; returning false stops the exchange. Returns the head.
    public func perform(_ request: HTTPRequest, onBody: @escaping (HTTPResponseHead, UnsafeRawBufferPointer) -> Bool) throws -> HTTPResponseHead {
        let done = DispatchSemaphore(value: 0)
        // Written once on the loop before the signal, read here after the wait.
        nonisolated(unsafe) var outcome: Result<HTTPResponseHead, HTTPTransferError>?
        call.send(request, onBody: onBody) { result in
            outcome = result
            done.signal()
        }
        done.wait()
        return try outcome!.get()
    }

    /// Runs `request` and returns its head and whole body, for answers useless until complete.
    /// A body over `maxBodyBytes` stops the exchange and throws `.transport` naming the limit.
    public func fetch(_ request: HTTPRequest, maxBodyBytes: Int) throws -> (HTTPResponseHead, Data) {
        var body = Data()
        var overflow = false
        let head: HTTPResponseHead
        do {
            head = try perform(request) { _, chunk in
                guard body.count + chunk.count <= maxBodyBytes else {
                    overflow = true
                    return false
                }
                body += chunk
                return true
            }
        } catch HTTPTransferError.stopped where overflow {
            throw HTTPTransferError.transport("the answer is over \(maxBodyBytes) bytes")
        }
        return (head, body)
    }
}
