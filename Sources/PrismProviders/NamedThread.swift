// Host threads named for the kernel, where top -H, perf, gdb and /proc/PID/task/*/comm read them:
// Foundation's Thread.name stays inside Foundation on Linux, so a thread kept the name of the
// thread that started it (often a dispatch worker's) and the host's loops could not be told apart.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

enum NamedThread {
    /// Starts a thread named `name` running `body`, with a stack of `stackSize` bytes (nil:
    /// Foundation's default). The kernel keeps the first 15 bytes of a name.
    static func start(_ name: String, stackSize: Int? = 1 << 20, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread {
            // What pthread_setname_np does (Glibc's Swift module leaves it out): proc(5).
            if let file = fopen("/proc/thread-self/comm", "w") {
                fputs(String(decoding: Array(name.utf8.prefix(15)), as: UTF8.self), file)
                fclose(file)
            }
            body()
        }
        thread.name = name
        if let stackSize { thread.stackSize = stackSize }
        thread.start()
    }
}
