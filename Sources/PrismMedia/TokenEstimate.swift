// Vendor formulas for what an image of a given size costs in input tokens (shared/vendor-apis.md),
// reported with every fitted image so a client sees the price of what it sends.
import Foundation

/// Input-token estimates for one image, per vendor formula.
public struct ImageTokenEstimate: Sendable, Equatable, Codable {
    /// Anthropic: w·h/750 after its own downscale to ≤ 1568 px long edge and ≈ 1.15 MP.
    public var anthropic: Int
    /// OpenAI GPT-4o class, detail high: 85 + 170 per 512-px tile after fitting 2048² and short side 768.
    public var openaiHigh: Int
    /// OpenAI detail low: a flat 85.
    public var openaiLow: Int
    /// Gemini 2.x: 258 if both sides ≤ 384, else 258 per tile of floor(min(w,h)/1.5) px.
    public var gemini: Int

    /// Estimates for an image of `width` × `height` pixels as sent.
    public init(width: Int, height: Int) {
        anthropic = Self.anthropic(width: width, height: height)
        openaiHigh = Self.openaiHigh(width: width, height: height)
        openaiLow = 85
        gemini = Self.gemini(width: width, height: height)
    }

    static func anthropic(width: Int, height: Int) -> Int {
        guard width > 0, height > 0 else { return 0 }
        var w = Double(width), h = Double(height)
        let scale = min(1, 1568 / max(w, h), (1_150_000 / (w * h)).squareRoot())
        w = (w * scale).rounded(.down); h = (h * scale).rounded(.down)
        return Int((w * h / 750).rounded(.up))
    }

    static func openaiHigh(width: Int, height: Int) -> Int {
        guard width > 0, height > 0 else { return 0 }
        var w = Double(width), h = Double(height)
        let fit = min(1, 2048 / max(w, h))
        w *= fit; h *= fit
        let short = min(1, 768 / min(w, h))
        w = (w * short).rounded(); h = (h * short).rounded()
        let tiles = Int((w / 512).rounded(.up)) * Int((h / 512).rounded(.up))
        return 85 + 170 * tiles
    }

    static func gemini(width: Int, height: Int) -> Int {
        guard width > 0, height > 0 else { return 0 }
        if width <= 384 && height <= 384 { return 258 }
        let unit = max(1, Int((Double(min(width, height)) / 1.5).rounded(.down)))
        let tiles = ((width + unit - 1) / unit) * ((height + unit - 1) / unit)
        return 258 * tiles
    }
}
