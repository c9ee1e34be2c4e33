// The host's side of the C ABI: the prism_host_api table handed to every plugin, whose C
// functions forward to the PluginCall behind a prism_call handle. One table layout serves 1.x and
// 2.0 plugins (2.0 only appended); it carries the version the plugin was loaded with.
import CPrismPlugin
import Foundation
import Logging

enum HostCallbacks {
    /// A host table for one plugin; `context` is released by the plugin's unload.
    static func table(context: Unmanaged<PluginLogContext>, version: (major: UInt32, minor: UInt32)) -> prism_host_api {
        prism_host_api(
            abi_major: version.major,
            abi_minor: version.minor,
            struct_size: MemoryLayout<prism_host_api>.size,
            emit: { call, event, len in
                guard let call = PluginCall.from(call) else { return PRISM_STATUS_INVALID_ARGUMENT }
                return call.emit(UnsafeRawBufferPointer(start: event, count: event == nil ? 0 : len))
            },
            finish: { call, status, message in
                PluginCall.from(call)?.finish(status: status, message: message.map { String(cString: $0) } ?? "")
            },
            is_cancelled: { call in
                (PluginCall.from(call)?.isCancelled ?? true) ? 1 : 0
            },
            log: { host, call, level, message in
                guard let host, let data = host.pointee.host_data, let message else { return }
                let context = Unmanaged<PluginLogContext>.fromOpaque(data).takeUnretainedValue()
                let levels: [prism_log_level: Logger.Level] = [
                    PRISM_LOG_DEBUG: .debug, PRISM_LOG_INFO: .info, PRISM_LOG_WARNING: .warning, PRISM_LOG_ERROR: .error,
                ]
                var metadata: Logger.Metadata = ["plugin": "\(context.fileName)"]
                if let call = PluginCall.from(call) { metadata["request"] = "\(call.requestID)" }
                context.logger.log(level: levels[level] ?? .info, "\(String(cString: message))", metadata: metadata)
            },
            host_data: context.toOpaque(),
            read_input: { call, buffer, capacity, outLength in
                guard let outLength else { return PRISM_STATUS_INVALID_ARGUMENT }
                outLength.pointee = 0
                guard let call = PluginCall.from(call) else { return PRISM_STATUS_INVALID_ARGUMENT }
                var count = 0
                let status = call.readInput(into: UnsafeMutableRawBufferPointer(start: buffer, count: buffer == nil ? 0 : capacity), count: &count)
                outLength.pointee = count
                return status
            },
            http_start: { call, request, handler, ctx in
                guard let call = PluginCall.from(call), let request, let handler else { return PRISM_STATUS_INVALID_ARGUMENT }
                guard let loop = call.loop else { return PRISM_STATUS_FAILED_PRECONDITION }
                switch HTTPExchange.make(call: call, loop: loop, request: request.pointee, handler: handler.pointee, ctx: ctx) {
                case .success(let exchange): return call.startExchange(exchange)
                case .failure(let refused): return refused.status
                }
            },
            run_blocking: { call, work, ctx in
                guard let call = PluginCall.from(call), let work else { return PRISM_STATUS_INVALID_ARGUMENT }
                return call.schedule(work, ctx, onLoop: false)
            },
            post: { call, work, ctx in
                guard let call = PluginCall.from(call), let work else { return PRISM_STATUS_INVALID_ARGUMENT }
                return call.schedule(work, ctx, onLoop: true)
            }
        )
    }
}
