// The C ABI plumbing of a Swift plugin: the function table behind `prism_plugin_entry` (ABI 2.0,
// non-blocking calls), and the trampolines that turn init/describe/start_call/shutdown into calls
// on a ProviderPlugin.
import CPrismPlugin
import CPrismPluginKit
import Foundation

/// A provider written in Swift. The kit calls `init` once (from the host's init), `info` once,
/// and `serve` for every call on the call's I/O loop, where it must not block.
public protocol ProviderPlugin: AnyObject, Sendable {
    /// `config` is the plugin's JSON object from the gateway config ("{}" when none). Throwing
    /// lists the plugin as failed with the error's description.
    init(config: [String: Any], log: PluginLog) throws
    var info: ProviderInfo { get }
    /// Serves one call without blocking: finish it, or start what will (`call.stream` for a
    /// streamed answer, `call.send`, or `call.runBlocking` for work written blocking). A thrown
    /// CallFailure fails the call; returning with nothing started and the call unfinished
    /// finishes it as INTERNAL. The host cancels a call by ending its exchanges (they fail with
    /// `.cancelled`); blocking work polls `call.isCancelled`.
    func serve(_ request: ProviderRequest, call: ProviderCall) throws
}

/// The host's log for messages not about one call.
public struct PluginLog: @unchecked Sendable {
    let host: UnsafePointer<prism_host_api>

    public func callAsFunction(_ level: LogLevel, _ message: String) {
        message.withCString { host.pointee.log!(host, nil, prism_log_level(rawValue: level.rawValue), $0) }
    }
}

/// What the kit keeps per plugin instance; `prism_plugin *` points at it.
private final class PluginInstance {
    let host: UnsafePointer<prism_host_api>
    let provider: ProviderPlugin
    /// The packed ProviderInfo, at a stable address until the instance ends (describe's contract).
    let info: UnsafeMutableBufferPointer<UInt8>

    init(host: UnsafePointer<prism_host_api>, provider: ProviderPlugin) {
        self.host = host
        self.provider = provider
        let bytes = provider.info.serialized()
        info = .allocate(capacity: max(bytes.count, 1))
        _ = info.initialize(from: bytes)
        infoCount = bytes.count
    }

    let infoCount: Int

    deinit { info.deallocate() }
}

/// Builds the function table for a plugin type. Call it from the plugin's exported entry:
///
///     @_cdecl("prism_plugin_entry")
///     public func prismPluginEntry(_ major: UInt32, _ minor: UInt32) -> UnsafeRawPointer? {
///         PluginExport.entry(MyProvider.self, hostABIMajor: major)
///     }
public enum PluginExport {
    nonisolated(unsafe) private static var pluginType: ProviderPlugin.Type?
    nonisolated(unsafe) private static var table: UnsafeMutablePointer<prism_plugin_api>?
    private static let lock = NSLock()

    public static func entry(_ type: ProviderPlugin.Type, hostABIMajor: UInt32) -> UnsafeRawPointer? {
        guard hostABIMajor == UInt32(PRISM_PLUGIN_ABI_MAJOR) else { return nil }
        pinImage()
        return lock.withLock {
            pluginType = type
            if let table { return UnsafeRawPointer(table) }
            let t = UnsafeMutablePointer<prism_plugin_api>.allocate(capacity: 1)
            t.initialize(to: prism_plugin_api(
                abi_major: UInt32(PRISM_PLUGIN_ABI_MAJOR), abi_minor: UInt32(PRISM_PLUGIN_ABI_MINOR),
                struct_size: MemoryLayout<prism_plugin_api>.size,
                init: pluginInit, describe: pluginDescribe, start_call: pluginStartCall,
                cancel: nil, shutdown: pluginShutdown, call_model: PRISM_CALLS_NONBLOCKING.rawValue))
            table = t
            return UnsafeRawPointer(t)
        }
    }

    fileprivate static var type: ProviderPlugin.Type? { lock.withLock { pluginType } }

    /// Keeps this plugin's shared object loaded for the life of the process. The Swift runtime
    /// caches type metadata and protocol conformances of every loaded image and cannot forget
    /// them, so a Swift .so that the host dlcloses leaves dangling pointers behind (the next
    /// dynamic cast anywhere in the process crashes). RTLD_NODELETE turns the host's dlclose
    /// into a no-op; hot reload still works, since a replaced plugin is loaded from a new copy.
    private static func pinImage() {
        _ = prism_plugin_kit_pin_image(unsafeBitCast(pluginInit, to: UnsafeRawPointer.self))
    }
}

private func instance(_ p: OpaquePointer?) -> PluginInstance? {
    p.map { Unmanaged<PluginInstance>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue() }
}

private let pluginInit: @convention(c) (UnsafePointer<prism_host_api>?, UnsafePointer<CChar>?, Int, UnsafeMutablePointer<OpaquePointer?>?,
                                       UnsafeMutablePointer<CChar>?, Int) -> prism_status = { host, json, len, out, error, cap in
    func failed(_ reason: String) -> prism_status {
        if let error, cap > 0 {
            let bytes = Array(reason.utf8.prefix(cap - 1))
            for (i, byte) in bytes.enumerated() { error[i] = CChar(bitPattern: byte) }
            error[bytes.count] = 0
        }
        return prism_status(rawValue: CallStatus.failedPrecondition.rawValue)
    }
    guard let host, let out, let type = PluginExport.type else { return failed("plugin entry was not called") }
    var config: [String: Any] = [:]
    if let json, len > 0 {
        let data = Data(bytes: json, count: len)
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return failed("config is not a JSON object") }
        config = object
    }
    do {
        let provider = try type.init(config: config, log: PluginLog(host: host))
        let made = PluginInstance(host: host, provider: provider)
        out.pointee = OpaquePointer(Unmanaged.passRetained(made).toOpaque())
        return prism_status(rawValue: 0)
    } catch {
        return failed("\(error)")
    }
}

private let pluginDescribe: @convention(c) (OpaquePointer?, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, UnsafeMutablePointer<Int>?) -> prism_status = { p, out, outLen in
    guard let plugin = instance(p), let out, let outLen else { return prism_status(rawValue: CallStatus.internalError.rawValue) }
    out.pointee = UnsafePointer(plugin.info.baseAddress)
    outLen.pointee = plugin.infoCount
    return prism_status(rawValue: 0)
}

private let pluginStartCall: @convention(c) (OpaquePointer?, OpaquePointer?, UnsafePointer<UInt8>?, Int) -> Void = { p, c, bytes, len in
    guard let plugin = instance(p), let c else { return }
    guard let request = ProviderRequest(serialized: UnsafeRawBufferPointer(start: bytes, count: len)) else {
        return ProviderCall(host: plugin.host, call: c, trace: []).finish(.invalidArgument, "the request is not a ProviderRequest")
    }
    let call = ProviderCall(host: plugin.host, call: c, trace: CallTrace.headers(of: request))
    call.serving { try plugin.provider.serve(request, call: call) }
}

// No cancel function: the host ends a cancelled call's exchanges itself (on_done CANCELLED), and
// blocking work sees is_cancelled.

private let pluginShutdown: @convention(c) (OpaquePointer?) -> Void = { p in
    guard let p else { return }
    Unmanaged<PluginInstance>.fromOpaque(UnsafeRawPointer(p)).release()
}
