// A plugin library that loaded: its dlopen handle, function table, instance and description,
// and its life after loading: calls in flight, draining when removed or replaced, and unloading
// (shutdown, then dlclose) once the last call has ended — always on the host's `unloadQueue`,
// never on the thread that ended the last call (it may be the plugin's own, inside host->finish).
import CPrismPlugin
import Foundation
import Logging

final class LoadedPlugin: @unchecked Sendable {
    /// The one serial queue every plugin's shutdown and dlclose run on. The last call of a
    /// draining plugin may end inside host->finish on a thread the plugin started; unloading
    /// there would return into an unmapped library (and a shutdown that joins the plugin's
    /// threads would join itself). On this queue, shutdown may join them, then dlclose runs.
    static let unloadQueue = DispatchQueue(label: "prism.plugin-unload")

    /// The plugin file as found in its folder, and its identity when it was loaded.
    let path: String
    let identity: PluginFileIdentity
    let description: ProviderDescription
    var fileName: String { (path as NSString).lastPathComponent }

    /// Where the plugin's calls run (prism_call_model); unknown values run as blocking.
    enum CallModel: UInt32 {
        case blocking = 0, nonblocking = 1, compute = 2
    }
    let callModel: CallModel

    private let handle: UnsafeMutableRawPointer
    private let api: UnsafePointer<prism_plugin_api>
    private let instance: OpaquePointer?
    private let host: UnsafeMutablePointer<prism_host_api>
    private let context: Unmanaged<PluginLogContext>
    private let logger: Logger

    private let lock = NSLock()
    private var inFlight = 0
    private var drainReason: String?
    private var unloaded = false
    /// Called once, after unloading, so the host can forget the plugin.
    var onUnload: (@Sendable (LoadedPlugin) -> Void)?

    init(path: String, identity: PluginFileIdentity, description: ProviderDescription, handle: UnsafeMutableRawPointer,
         api: UnsafePointer<prism_plugin_api>, instance: OpaquePointer?, host: UnsafeMutablePointer<prism_host_api>,
         context: Unmanaged<PluginLogContext>, logger: Logger) {
        self.path = path
        self.identity = identity
        // read_input exists from ABI 1.1 and batch calls from 1.2: an older plugin never gets
        // them, whatever its description says.
        var description = description
        let version = (api.pointee.abi_major, api.pointee.abi_minor)
        func mask(_ model: inout ModelCapability) {
            if version < (1, 1) { model.features.streamingInput = false }
            if version < (1, 2) { model.features.batch = false }
        }
        for index in description.models.indices { mask(&description.models[index]) }
        for index in description.families.indices { mask(&description.families[index].template) }
        self.description = description
        // call_model is 2.0's; a 1.x table ends before it and runs as PRISM_CALLS_BLOCKING.
        let hasModel = api.pointee.abi_major >= 2
            && api.pointee.struct_size >= MemoryLayout<prism_plugin_api>.offset(of: \prism_plugin_api.call_model)! + MemoryLayout<UInt32>.size
        callModel = hasModel ? CallModel(rawValue: api.pointee.call_model) ?? .blocking : .blocking
        self.handle = handle
        self.api = api
        self.instance = instance
        self.host = host
        self.context = context
        self.logger = logger
    }

    /// Why the plugin is draining, or nil while it takes new calls.
    var draining: String? { lock.withLock { drainReason } }
    var callsInFlight: Int { lock.withLock { inFlight } }

    /// Counts a new call in; false once draining (the caller looks for the plugin's successor).
    func beginCall() -> Bool {
        lock.withLock {
            guard drainReason == nil else { return false }
            inFlight += 1
            return true
        }
    }

    /// Counts a call out (finished and returned from start_call); the last one of a draining
    /// plugin has it unloaded on `unloadQueue`. Any thread, the plugin's own included.
    func callEnded() {
        let unload: Bool = lock.withLock {
            inFlight -= 1
            return drainReason != nil && inFlight == 0 && !unloaded
        }
        if unload { self.unload(wait: false) }
    }

    /// Stops new calls; in-flight ones finish on this code, then the library is unloaded.
    func drain(_ reason: String) {
        let unload: Bool = lock.withLock {
            guard drainReason == nil else { return false }
            drainReason = reason
            return inFlight == 0 && !unloaded
        }
        logger.info("draining \(fileName): \(reason)")
        // The host drains on a thread of its own (rescan, shutdown): an idle plugin is gone on return.
        if unload { self.unload(wait: true) }
    }

    /// Runs start_call on the current thread: a pool's for blocking and compute calls, the call's
    /// loop for non-blocking ones.
    func run(_ call: PluginCall, request: [UInt8]) {
        request.withUnsafeBufferPointer { bytes in
            api.pointee.start_call(instance, call.handle, bytes.baseAddress, bytes.count)
        }
        call.startCallReturned()
    }

    /// Passes a cancel to the plugin, if it has a cancel function.
    func cancel(_ call: PluginCall) {
        api.pointee.cancel?(instance, call.handle)
    }

    func log(_ level: Logger.Level, _ message: String) {
        logger.log(level: level, "\(message)", metadata: ["plugin": "\(fileName)"])
    }

    /// Has `unloadQueue` unload the plugin (once); `wait` only from a host thread outside the queue.
    private func unload(wait: Bool) {
        let proceed: Bool = lock.withLock {
            guard !unloaded else { return false }
            unloaded = true
            return true
        }
        guard proceed else { return }
        if wait {
            Self.unloadQueue.sync { unloadOnQueue() }
        } else {
            Self.unloadQueue.async { self.unloadOnQueue() }
        }
    }

    /// Shutdown, dlclose and freeing the host table: no call is in flight and none can start.
    private func unloadOnQueue() {
        dispatchPrecondition(condition: .onQueue(Self.unloadQueue))
        api.pointee.shutdown?(instance)
        dlclose(handle)
        host.deallocate()
        context.release()
        logger.info("unloaded \(fileName) (\(description.name) \(description.version))")
        onUnload?(self)
    }
}

/// What the host's log callback needs to attribute a plugin's log line.
final class PluginLogContext {
    let logger: Logger
    let fileName: String

    init(logger: Logger, fileName: String) {
        self.logger = logger
        self.fileName = fileName
    }
}
