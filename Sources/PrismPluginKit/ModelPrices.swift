// Models' list prices for the capability matrix: a vendor plugin's defaults (US dollars per
// million tokens, as vendors publish them), overridden or extended by the plugin config's
// "prices" object, e.g. {"prices": {"gpt-4o": [2.5, 10]}} for input and output.
import Foundation

/// Input and output prices per model; the host prices a call's usage with them.
public struct ModelPrices: Sendable {
    /// US dollars per million tokens.
    public typealias Price = (input: Double, output: Double)

    private var table: [String: Price]

    /// `defaults` with the config's "prices" entries over them; throws naming a bad entry.
    public init(defaults: [String: Price], config: [String: Any], plugin: String) throws {
        table = defaults
        guard let given = config["prices"] else { return }
        guard let entries = given as? [String: Any] else {
            throw PriceConfigError(description: "\(plugin): prices must be an object of model: [input, output]")
        }
        for (model, value) in entries {
            guard let pair = value as? [NSNumber], pair.count == 2, pair.allSatisfy({ $0.doubleValue >= 0 && $0.doubleValue.isFinite }) else {
                throw PriceConfigError(description: "\(plugin): prices.\(model) must be [input, output] in US dollars per million tokens, not \(value)")
            }
            table[model] = (pair[0].doubleValue, pair[1].doubleValue)
        }
    }

    /// The rows with their models' prices written in (micro-dollars per million tokens); a model
    /// without one keeps 0, which the matrix shows as unknown.
    public func priced(_ rows: [ModelInfo]) -> [ModelInfo] {
        rows.map { row in
            guard let price = table[row.id] else { return row }
            var row = row
            row.inputPrice = UInt64((price.input * 1_000_000).rounded())
            row.outputPrice = UInt64((price.output * 1_000_000).rounded())
            return row
        }
    }
}

/// A config "prices" entry that is not [input, output]; the plugin fails to load, naming it.
public struct PriceConfigError: Error, CustomStringConvertible {
    public var description: String
}
