// Model families from a vendor plugin's config (ABI 1.3): {"families": {"PATTERN": "LIKE"}} makes
// every model id matching PATTERN routable with the capabilities of LIKE, a known model id or one of
// the plugin's own family patterns; these come before the plugin's own families, so they can add
// families (a fine-tuned or local model) or override one.
import Foundation

public enum ModelFamilies {
    /// The families to declare: the config's, most specific first (more literal characters, then
    /// by pattern), then `builtIn`. Throws naming a bad entry, so the plugin fails to load with it.
    public static func configured(_ config: [String: Any], plugin: String, models: [ModelInfo], builtIn: [ModelInfo]) throws -> [ModelInfo] {
        guard let given = config["families"] else { return builtIn }
        guard let entries = given as? [String: Any] else {
            throw FamilyConfigError(description: "\(plugin): families must be an object of \"pattern\": \"known model or family\", e.g. {\"ft:gpt-4o*\": \"gpt-4o\"}")
        }
        var added: [ModelInfo] = []
        for (pattern, value) in entries {
            guard pattern.contains("*") else {
                throw FamilyConfigError(description: "\(plugin): families key '\(pattern)' must be a pattern with '*' (a single model belongs in models)")
            }
            guard let like = value as? String, let template = (models + builtIn).first(where: { $0.id == like }) else {
                let known = (models + builtIn).map(\.id).joined(separator: ", ")
                throw FamilyConfigError(description: "\(plugin): families.\(pattern) must name a known model or family (one of \(known)), not \(value)")
            }
            var family = template
            family.id = pattern
            added.append(family)
        }
        func literal(_ p: String) -> Int { p.filter { $0 != "*" }.count }
        added.sort { (literal($0.id), $1.id) > (literal($1.id), $0.id) }
        return added + builtIn
    }
}

/// A config "families" entry the plugin cannot use; the plugin fails to load, naming it.
public struct FamilyConfigError: Error, CustomStringConvertible {
    public var description: String
}
