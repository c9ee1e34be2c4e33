// A plugin's settings from the process environment (API keys, base URLs), read the same way by
// every vendor plugin.
import Foundation

public enum PluginEnvironment {
    /// The variable `name` as it is now (getenv, not ProcessInfo's copy taken at start-up: the
    /// host may set it just before it loads the plugin); nil when unset or empty.
    public static func value(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
    }
}
