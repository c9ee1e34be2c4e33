// A model family (ABI 1.3): a pattern such as "claude-*" and what every model it matches can do,
// so a model id the plugin does not list (a dated snapshot, a model newer than the plugin) is
// still routable, and the plugin is called with that exact id.
import Foundation

/// Capabilities shared by every model id matching `pattern` (`*` = any run of characters).
public struct ModelFamily: Sendable, Equatable {
    public var pattern: String
    /// The family's row; its `id` is the pattern.
    public var template: ModelCapability

    public init(pattern: String, template: ModelCapability) {
        self.pattern = pattern
        self.template = template
    }

    /// The provider/pattern name ListProviders shows ("anthropic/claude-*").
    public var name: String { template.name }

    /// Whether `id` matches the pattern as a whole (a glob whose only wildcard is `*`). Only ids
    /// of printable ASCII without spaces, at most `ProviderLimits.maxModelIDLength` long, match:
    /// the id is the client's, and reaches the vendor as it is.
    public func matches(_ id: String) -> Bool {
        let bytes = Array(id.utf8)
        guard bytes.count <= ProviderLimits.maxModelIDLength, bytes.allSatisfy({ (0x21...0x7E).contains($0) }) else { return false }
        return Self.glob(Array(pattern.utf8)[...], bytes[...])
    }

    /// The row for `id`: the family's capabilities under that id, which the plugin receives.
    public func model(_ id: String) -> ModelCapability {
        var model = template
        model.id = id
        return model
    }

    /// `*` matches any run; everything else matches itself. Greedy with backtracking to the last
    /// star, so linear in practice for the short patterns plugins declare.
    private static func glob(_ pattern: ArraySlice<UInt8>, _ text: ArraySlice<UInt8>) -> Bool {
        var p = pattern.startIndex, t = text.startIndex
        var star: (p: Int, t: Int)?
        while t < text.endIndex {
            if p < pattern.endIndex, pattern[p] == UInt8(ascii: "*") {
                star = (p, t)
                p += 1
            } else if p < pattern.endIndex, pattern[p] == text[t] {
                p += 1
                t += 1
            } else if let s = star {
                p = s.p + 1
                t = s.t + 1
                star = (s.p, s.t + 1)
            } else {
                return false
            }
        }
        while p < pattern.endIndex, pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.endIndex
    }
}
