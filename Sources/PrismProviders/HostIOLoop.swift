// The host's I/O loops: each is one thread with an epoll set driving a libcurl multi handle through
// its socket API and the host's own HTTP/2 vendor connections (VendorConnection), so one thread
// carries thousands of HTTP transfers: the exchanges of ABI 2.0 plugin calls and the fetches of
// Media.uri. A non-blocking plugin call is given one loop for its
// life: its start_call, HTTP exchanges, cancel and posted work all run there (prism_plugin.h, "Threads").
import CCurl
import CPrismPlugin
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a loop drives: one curl easy handle, and what happens when it ends. Loop thread only.
protocol LoopTransfer: AnyObject {
    var easy: UnsafeMutableRawPointer { get }
    /// When the loop ends it itself (monotonic nanoseconds), `.max` for never (curl's own timeout).
    var loopDeadline: UInt64 { get }
    /// Why the loop ended it at `end`.
    var expiredMessage: String { get }
    /// Why it must end before it starts (its call was cancelled), or nil.
    var startRefusal: String? { get }
    /// curl is done with it (complete, or failed on its own); it is out of the multi.
    func curlFinished(_ code: CURLcode, on loop: HostIOLoop)
    /// The loop ended it (cancelled, stopped, expired) with its connection closed.
    func ended(status: prism_status, message: String)
}

/// A socket the loop watches for someone other than curl (a VendorConnection). Loop thread only.
protocol LoopSocket: AnyObject {
    func ready(readable: Bool, writable: Bool, failed: Bool)
}

/// Something the loop ends when its time is up, besides curl's transfers: an exchange on one of
/// the host's own HTTP/2 connections, a connection still connecting or idle. Loop thread only.
protocol LoopTimed: AnyObject {
    /// Monotonic nanoseconds, `.max` for never.
    var loopDeadline: UInt64 { get }
    func expire()
}

/// One I/O loop. Other threads only `execute` work on it; everything else runs on its thread.
final class HostIOLoop: @unchecked Sendable {
    // @unchecked: `lock` guards `commands`, `wakePending` and `runningCount`; `thread` is written
    // once before init returns; every other var is touched only on the loop's thread.

    /// The process's loops, one per core, started on first use and never stopped (as an event
    /// loop group): their number stays the same however many streams run.
    static let shared: [HostIOLoop] = (0..<max(1, ProcessInfo.processInfo.activeProcessorCount)).map { HostIOLoop(index: $0) }
    private static let roundRobin = NSLock()
    nonisolated(unsafe) private static var nextIndex = 0

    /// The loop for a new call, in turn.
    static func next() -> HostIOLoop {
        let index = roundRobin.withLock { () -> Int in
            defer { nextIndex = (nextIndex + 1) % shared.count }
            return nextIndex
        }
        return shared[index]
    }

    /// Connections curl keeps open per loop (in use or idle); one per stream in flight, since its
    /// streams are not multiplexed (see below). Idle ones close after 118 s (curl's default).
    static let maxConnections = 4096
    /// The longest a due deadline waits to be noticed when nothing else wakes the loop.
    static let deadlineSlackNanoseconds: UInt64 = 5_000_000

    let multi: UnsafeMutableRawPointer
    private let epollFD: Int32
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private var thread = pthread_t()

    private let lock = NSLock()
    private var commands: [() -> Void] = []
    private var wakePending = false
    private var runningCount = 0

    /// The transfers (exchanges, media fetches) running on this loop now, for /metrics.
    var running: Int { lock.withLock { runningCount } }

    // The loop thread's own.
    private var timerAt: UInt64?
    private var watched = Set<Int32>()
    private var transfers: [UnsafeMutableRawPointer: any LoopTransfer] = [:] {
        didSet { publishRunning() }
    }
    private var deferredEnds: [(any LoopTransfer, prism_status, String)] = []
    private var nextDeadline: UInt64 = .max
    private var sockets: [Int32: any LoopSocket] = [:]
    private var timed: [ObjectIdentifier: any LoopTimed] = [:]
    /// The exchanges among `timed` (those on the host's own HTTP/2 connections).
    private var timedExchanges = 0 {
        didSet { publishRunning() }
    }
    /// The host's own HTTP/2 connections to vendors from this loop (created on first use).
    private(set) lazy var vendorConnections = VendorConnections(loop: self)

    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    private init(index: Int) {
        _ = Self.globalInit
        multi = curl_multi_init()!
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        var fds: [Int32] = [0, 0]
        precondition(epollFD >= 0 && pipe(&fds) == 0, "cannot create the host I/O loop's epoll set: errno \(errno)")
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.fd = wakeRead
        epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeRead, &event)

        let me = Unmanaged.passUnretained(self).toOpaque()
        prism_curl_multi_set_pointer(multi, CURLMOPT_SOCKETDATA, me)
        prism_curl_multi_set_socket_fn(multi, socketCallback)
        prism_curl_multi_set_pointer(multi, CURLMOPT_TIMERDATA, me)
        prism_curl_multi_set_timer_fn(multi, timerCallback)
        prism_curl_multi_set_long(multi, CURLMOPT_MAXCONNECTS, Self.maxConnections)
        // One stream per connection: curl 7.88 ends an abandoned HTTP/2 stream only by closing its
        // connection (see CurlExchange), which would cut every stream multiplexed with it, and
        // buffers a paused stream's answer up to its 32 MB window. Vendors' HTTPS is multiplexed
        // by the host's own client instead (VendorConnection); curl carries plain HTTP/1.1.
        prism_curl_multi_set_long(multi, CURLMOPT_PIPELINING, Int(CURLPIPE_NOTHING))

        let started = DispatchSemaphore(value: 0)
        NamedThread.start("prism-io-\(index)") { [unowned self] in
            self.thread = pthread_self()
            // OpenSSL writes a VendorConnection's socket with write(2): a vendor that closed it
            // must be an EPIPE for this thread, not a SIGPIPE for the process.
            var pipeSignal = sigset_t()
            sigemptyset(&pipeSignal)
            sigaddset(&pipeSignal, SIGPIPE)
            pthread_sigmask(SIG_BLOCK, &pipeSignal, nil)
            started.signal()
            self.run()
        }
        started.wait()
    }

    /// Whether the calling thread is this loop's.
    var isCurrent: Bool { pthread_equal(pthread_self(), thread) != 0 }

    func preconditionOnLoop(_ what: @autoclosure () -> String = "") {
        precondition(isCurrent, "must run on its host I/O loop \(what())")
    }

    /// Runs `work` on the loop, after what was queued before it. Any thread.
    func execute(_ work: @escaping () -> Void) {
        let wake: Bool = lock.withLock {
            commands.append(work)
            defer { wakePending = true }
            return !wakePending
        }
        if wake {
            var byte: UInt8 = 1
            _ = write(wakeWrite, &byte, 1)
        }
    }

    // MARK: - Transfers (loop thread)

    /// Starts `transfer`, or ends it at once when it was refused meanwhile (its call cancelled).
    func add(_ transfer: any LoopTransfer) {
        preconditionOnLoop("to add a transfer")
        if let reason = transfer.startRefusal {
            return transfer.ended(status: PRISM_STATUS_CANCELLED, message: reason)
        }
        transfers[transfer.easy] = transfer
        nextDeadline = min(nextDeadline, transfer.loopDeadline)
        curl_multi_add_handle(multi, transfer.easy)
    }

    /// Ends `transfer` before curl did: its connection is closed (so the other side stops
    /// sending), its TLS session kept for the next one. Nothing when it is not running.
    func abort(_ transfer: any LoopTransfer, status: prism_status, message: String) {
        preconditionOnLoop("to abort a transfer")
        guard transfers.removeValue(forKey: transfer.easy) != nil else { return }
        prism_curl_set_long(transfer.easy, CURLOPT_FORBID_REUSE, 1)
        prism_curl_keep_tls_session(transfer.easy)
        curl_multi_remove_handle(multi, transfer.easy)
        transfer.ended(status: status, message: message)
    }

    /// Asks for `transfer` to end once curl's current callback has returned (curl forbids
    /// removing a handle from inside its own callbacks).
    func endAfterCallback(_ transfer: any LoopTransfer, status: prism_status, message: String) {
        deferredEnds.append((transfer, status, message))
    }

    /// Lets a paused exchange read again (after the call's buffer drained).
    func resume(_ exchange: CurlExchange) {
        preconditionOnLoop("to resume an exchange")
        guard transfers[exchange.easy] != nil, exchange.paused else { return }
        exchange.paused = false
        curl_easy_pause(exchange.easy, CURLPAUSE_CONT)
        endDeferred()
    }

    // MARK: - Other sockets and deadlines (loop thread)

    /// Watches `fd` for `owner`, for reading and, when `write`, writing; again to change that.
    func watchSocket(_ fd: Int32, owner: any LoopSocket, write: Bool) {
        preconditionOnLoop("to watch a socket")
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | (write ? EPOLLOUT.rawValue : 0)
        event.data.fd = fd
        let added = sockets.updateValue(owner, forKey: fd) == nil
        epoll_ctl(epollFD, added ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &event)
    }

    /// Stops watching `fd` (before it is closed).
    func unwatchSocket(_ fd: Int32) {
        preconditionOnLoop("to unwatch a socket")
        if sockets.removeValue(forKey: fd) != nil { epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil) }
    }

    /// Has `item` expire at its deadline (read now, and again whenever the loop looks).
    func track(_ item: any LoopTimed) {
        preconditionOnLoop("to track a deadline")
        if timed.updateValue(item, forKey: ObjectIdentifier(item)) == nil, item is HTTPExchange { timedExchanges += 1 }
        nextDeadline = min(nextDeadline, item.loopDeadline)
    }

    func untrack(_ item: any LoopTimed) {
        if timed.removeValue(forKey: ObjectIdentifier(item)) != nil, item is HTTPExchange { timedExchanges -= 1 }
    }

    private func publishRunning() {
        let count = transfers.count + timedExchanges
        lock.withLock { runningCount = count }
    }

    // MARK: - The loop

    private func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        var running: Int32 = 0
        while true {
            let wakeAt = min(timerAt ?? .max, nextDeadline)
            var timeout: Int32 = -1
            if wakeAt != .max {
                let now = DispatchTime.now().uptimeNanoseconds
                timeout = wakeAt <= now ? 0 : Int32(min((wakeAt - now + 999_999) / 1_000_000, 60_000))
            }
            let n = epoll_wait(epollFD, &events, Int32(events.count), timeout)
            for i in 0..<max(0, Int(n)) {
                let fd = events[i].data.fd
                if fd == wakeRead {
                    drainWakePipe()
                    continue
                }
                let bits = events[i].events
                if let owner = sockets[fd] {
                    owner.ready(readable: bits & EPOLLIN.rawValue != 0, writable: bits & EPOLLOUT.rawValue != 0,
                                failed: bits & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0)
                    continue
                }
                var flags: Int32 = 0
                if bits & EPOLLIN.rawValue != 0 { flags |= CURL_CSELECT_IN }
                if bits & EPOLLOUT.rawValue != 0 { flags |= CURL_CSELECT_OUT }
                if bits & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 { flags |= CURL_CSELECT_ERR }
                curl_multi_socket_action(multi, fd, flags, &running)
                endDeferred()
            }
            if let at = timerAt, at <= DispatchTime.now().uptimeNanoseconds {
                timerAt = nil
                curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running)
                endDeferred()
            }
            runCommands()
            collectFinished()
            endExpired()
        }
    }

    private func drainWakePipe() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(wakeRead, &buffer, buffer.count) > 0 {}
    }

    private func runCommands() {
        let work: [() -> Void] = lock.withLock {
            defer {
                commands = []
                wakePending = false
            }
            return commands
        }
        for item in work {
            item()
            endDeferred()
        }
    }

    private func endDeferred() {
        while !deferredEnds.isEmpty {
            let ends = deferredEnds
            deferredEnds = []
            for (transfer, status, message) in ends { abort(transfer, status: status, message: message) }
        }
    }

    /// Transfers curl finished (complete, or failed on its own: refused, reset, TLS).
    private func collectFinished() {
        var left: Int32 = 0
        var done: [(UnsafeMutableRawPointer, CURLcode)] = []
        while let message = curl_multi_info_read(multi, &left) {
            if message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle {
                done.append((easy, message.pointee.data.result))
            }
        }
        for (easy, code) in done {
            guard let transfer = transfers.removeValue(forKey: easy) else { continue }
            curl_multi_remove_handle(multi, easy)
            transfer.curlFinished(code, on: self)
        }
    }

    /// Ends transfers past their end (an exchange's timeout or its call's deadline), and
    /// whatever else is tracked.
    private func endExpired() {
        let now = DispatchTime.now().uptimeNanoseconds
        guard nextDeadline <= now + Self.deadlineSlackNanoseconds else { return }
        nextDeadline = .max
        for transfer in Array(transfers.values) {
            if transfer.loopDeadline <= now {
                abort(transfer, status: PRISM_STATUS_DEADLINE_EXCEEDED, message: transfer.expiredMessage)
            } else {
                nextDeadline = min(nextDeadline, transfer.loopDeadline)
            }
        }
        for item in Array(timed.values) {
            if item.loopDeadline <= now {
                untrack(item)
                item.expire()
            }
        }
        for item in timed.values { nextDeadline = min(nextDeadline, item.loopDeadline) }
    }

    // MARK: - curl's callbacks (loop thread, inside socket_action)

    fileprivate func watch(_ fd: Int32, _ what: Int32) {
        if what == CURL_POLL_REMOVE {
            if watched.remove(fd) != nil { epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil) }
            return
        }
        var event = epoll_event()
        event.events = (what & CURL_POLL_IN != 0 ? EPOLLIN.rawValue : 0) | (what & CURL_POLL_OUT != 0 ? EPOLLOUT.rawValue : 0)
        event.data.fd = fd
        if watched.insert(fd).inserted {
            epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event)
        } else {
            epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &event)
        }
    }

    fileprivate func setTimer(_ milliseconds: Int) {
        timerAt = milliseconds < 0 ? nil : DispatchTime.now().uptimeNanoseconds + UInt64(milliseconds) * 1_000_000
    }
}

private let socketCallback: curl_socket_callback = { _, fd, what, loop, _ in
    Unmanaged<HostIOLoop>.fromOpaque(loop!).takeUnretainedValue().watch(fd, what)
    return 0
}

private let timerCallback: curl_multi_timer_callback = { _, milliseconds, loop in
    Unmanaged<HostIOLoop>.fromOpaque(loop!).takeUnretainedValue().setTimer(milliseconds)
    return 0
}
