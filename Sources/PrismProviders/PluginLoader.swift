// Loading one plugin: the private copy, dlopen(RTLD_NOW | RTLD_LOCAL), the entry symbol, the
// ABI version check, init and describe. Any failure is a reason string; the host keeps serving.
import CPrismPlugin
import Foundation
import Logging

enum PluginLoader {
    /// The prism_plugin_api size of ABI 1.0 (everything before 2.0's call_model): the plugin's
    /// table must be at least this big.
    private static let minimumTableSize = MemoryLayout<prism_plugin_api>.offset(of: \prism_plugin_api.call_model)!

    static func load(path: String, shadowFolder: String, tag: Int, config: String, logger: Logger) throws -> LoadedPlugin {
        let (copy, identity) = try PluginFile.secureCopy(path, into: shadowFolder, tag: tag)
        // The mapping keeps the code; the copy's name is not needed once it is open.
        defer { unlink(copy) }
        guard let handle = dlopen(copy, RTLD_NOW | RTLD_LOCAL) else {
            throw LoadError("dlopen failed: \(dlerror().map { String(cString: $0) } ?? "unknown error")")
        }
        var keep = false
        defer { if !keep { dlclose(handle) } }

        guard let symbol = dlsym(handle, PRISM_PLUGIN_ENTRY_SYMBOL) else {
            throw LoadError("no \(PRISM_PLUGIN_ENTRY_SYMBOL) symbol: not a Prism plugin")
        }
        let entry = unsafeBitCast(symbol, to: prism_plugin_entry_fn.self)
        // 2.0 first; a 1.x plugin refuses it and is offered 1.3, whose calls run as they always did.
        let versions: [(major: UInt32, minor: UInt32)] = [(UInt32(PRISM_PLUGIN_ABI_MAJOR), UInt32(PRISM_PLUGIN_ABI_MINOR)), (1, UInt32(PRISM_PLUGIN_ABI_1_MINOR))]
        guard let (api, version) = versions.lazy.compactMap({ v in entry(v.major, v.minor).map { ($0, v) } }).first else {
            throw LoadError("the plugin refused host ABI \(PRISM_PLUGIN_ABI_MAJOR).\(PRISM_PLUGIN_ABI_MINOR) and 1.\(PRISM_PLUGIN_ABI_1_MINOR)")
        }
        let table = api.pointee
        guard table.abi_major == version.major else {
            throw LoadError("plugin ABI \(table.abi_major).\(table.abi_minor) is not supported; the host speaks \(PRISM_PLUGIN_ABI_MAJOR).\(PRISM_PLUGIN_ABI_MINOR) and 1.\(PRISM_PLUGIN_ABI_1_MINOR)")
        }
        guard table.struct_size >= minimumTableSize else {
            throw LoadError("plugin table is \(table.struct_size) bytes, smaller than ABI 1.0's \(minimumTableSize)")
        }
        guard let initialize = table.`init`, let describe = table.describe, table.start_call != nil else {
            throw LoadError("plugin table lacks a required function (init, describe or start_call)")
        }

        let fileName = (path as NSString).lastPathComponent
        let context = Unmanaged.passRetained(PluginLogContext(logger: logger, fileName: fileName))
        let host = UnsafeMutablePointer<prism_host_api>.allocate(capacity: 1)
        host.initialize(to: HostCallbacks.table(context: context, version: version))
        var hostKept = false
        defer {
            if !hostKept {
                host.deallocate()
                context.release()
            }
        }

        var instance: OpaquePointer?
        var reason = [CChar](repeating: 0, count: ProviderLimits.initErrorBytes)
        let status = config.withCString { json in
            initialize(host, json, strlen(json), &instance, &reason, reason.count)
        }
        guard status == PRISM_STATUS_OK else {
            reason[reason.count - 1] = 0
            let text = reason.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw LoadError("init failed (status \(status.rawValue)): \(text.isEmpty ? "no reason given" : text)")
        }

        let description: ProviderDescription
        do {
            var bytes: UnsafePointer<UInt8>?
            var length = 0
            let described = describe(instance, &bytes, &length)
            guard described == PRISM_STATUS_OK else { throw LoadError("describe failed (status \(described.rawValue))") }
            description = try ProviderDescription(serialized: UnsafeRawBufferPointer(start: bytes, count: bytes == nil ? 0 : length))
        } catch {
            table.shutdown?(instance)
            throw error is LoadError ? error : LoadError("describe returned an invalid ProviderInfo: \(error)")
        }

        keep = true
        hostKept = true
        return LoadedPlugin(path: path, identity: identity, description: description, handle: handle, api: api,
                            instance: instance, host: host, context: context, logger: logger)
    }
}
