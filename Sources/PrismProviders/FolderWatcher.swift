// Watches the plugin folders with inotify and calls back (debounced) when a file is written,
// moved in or out, deleted or has its mode changed, so plugins reload without a restart.
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

final class FolderWatcher: @unchecked Sendable {
    private let directories: [String]
    private let logger: Logger
    private let onChange: @Sendable () -> Void
    private let lock = NSLock()
    private var running = false
    private var fd: Int32 = -1
    private let finished = DispatchSemaphore(value: 0)

    init(directories: [String], logger: Logger, onChange: @escaping @Sendable () -> Void) {
        self.directories = directories
        self.logger = logger
        self.onChange = onChange
    }

    func start() {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else {
            logger.error("cannot watch plugin folders (inotify: \(String(cString: strerror(errno)))); plugins load at start only")
            return
        }
        let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_CREATE)
        for directory in directories where inotify_add_watch(fd, directory, mask) < 0 {
            logger.warning("cannot watch plugin folder \(directory): \(String(cString: strerror(errno)))")
        }
        lock.withLock {
            self.fd = fd
            running = true
        }
        NamedThread.start("prism-watcher", stackSize: nil) { self.loop(fd) }
    }

    func stop() {
        let wasRunning = lock.withLock { () -> Bool in
            defer { running = false }
            return running
        }
        if wasRunning { finished.wait() }
    }

    private var isRunning: Bool { lock.withLock { running } }

    private func loop(_ fd: Int32) {
        defer {
            close(fd)
            finished.signal()
        }
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while isRunning {
            guard wait(fd, ProviderLimits.watcherPollMilliseconds) else { continue }
            // Read until a quiet period passes, so a file being copied in is seen complete.
            var changed = drain(fd, &buffer)
            while isRunning && wait(fd, Int32(ProviderLimits.reloadDebounceSeconds * 1000)) {
                changed = drain(fd, &buffer) || changed
            }
            if changed && isRunning { onChange() }
        }
    }

    private func wait(_ fd: Int32, _ milliseconds: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, milliseconds) > 0
    }

    /// Reads pending events; true when there were any. Every kind counts: a hard link shows
    /// only IN_CREATE, and a half-copied file is simply reloaded when its IN_CLOSE_WRITE follows.
    private func drain(_ fd: Int32, _ buffer: inout [UInt8]) -> Bool {
        var any = false
        while buffer.withUnsafeMutableBytes({ read(fd, $0.baseAddress, $0.count) }) > 0 { any = true }
        return any
    }
}
