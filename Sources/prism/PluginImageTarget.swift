// `--provider` of the `prism media` commands: the image limits a provider plugin declares, read by
// loading the plugins exactly as prism-server does (same folders, config file and environment,
// same host code), so `prism media fit --provider X` produces what the gateway would send to X.
import ArgumentParser
import Foundation
import Logging
import PrismMedia
import PrismProviders
import PrismServer

enum PluginImageTarget {
    /// The target of `provider`'s model `model` (a known id or one a family matches), or of its
    /// first known model that takes images; and the "provider/model" it came from.
    ///
    /// Plugins are found as the server finds them: `plugins.path` of `configFile`, then
    /// PRISM_PLUGIN_PATH, else the folder of this executable (where `swift build` puts them), with
    /// `plugins.config` of the same file; a vendor plugin describes its models only once its key is
    /// in the environment, as in the server.
    static func target(provider: String, model: String?, configFile: String?) throws -> (ImageTarget, String) {
        var settings = ServerSettings()
        do {
            if let configFile { try settings.apply(ConfigFile.load(configFile)) }
            try settings.applyEnvironment(ProcessInfo.processInfo.environment)
        } catch {
            throw ValidationError("\(error)")
        }
        var options = PluginHost.Options(directories: settings.pluginPath)
        options.pluginConfig = settings.pluginConfig
        options.watch = false
        options.workerThreads = 1
        // Plugins log through the host; the CLI's output is the fit report, so they stay quiet.
        let host = try PluginHost(options: options, logger: Logger(label: "prism.plugins", factory: { _ in SwiftLogNoOpLogHandler() }))
        host.start()
        defer { host.shutdown() }

        let statuses = host.plugins().filter { $0.provider?.name == provider }
        guard let description = statuses.first(where: { $0.state == .loaded })?.provider else {
            let failed = host.plugins().filter { if case .failed = $0.state { return true } else { return false } }
                .map { "\($0.fileName): \($0.state)" }
            let loaded = Set(host.plugins().compactMap { $0.provider?.name }).sorted()
            throw ValidationError("no loaded plugin is provider '\(provider)' in \(settings.pluginPath.joined(separator: ":"))"
                + " (loaded: \(loaded.isEmpty ? "none" : loaded.joined(separator: ", ")))" + (failed.isEmpty ? "" : "; failed: \(failed.joined(separator: "; "))"))
        }
        let row: ModelCapability?
        if let model {
            row = Planner().model(named: "\(provider)/\(model)", matrix: description.models, families: description.families)
            guard row != nil else {
                throw ValidationError("\(provider) does not serve '\(model)': it serves \(description.served)")
            }
        } else {
            row = description.models.first { $0.operations.contains(.generate) && $0.accepts(.image) }
        }
        guard let row, row.accepts(.image) else {
            throw ValidationError("\(provider) has no model that takes images\(model.map { " ('\($0)' does not)" } ?? ""): it serves \(description.served)")
        }
        return (row.limits.imageTarget, row.name)
    }
}
