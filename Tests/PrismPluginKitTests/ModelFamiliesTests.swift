// A vendor plugin's config "families": added in front of the plugin's own, most specific first,
// copying the capabilities of the model or family they name; bad entries refused naming them.
@testable import PrismPluginKit
import XCTest

final class ModelFamiliesTests: XCTestCase {
    private func row(_ id: String, inputs: [Modality]) -> ModelInfo {
        var m = ModelInfo(id: id)
        m.inputs = inputs
        m.maxImagePixels = 1_000
        return m
    }

    func testConfigFamiliesComeFirstMostSpecificFirstWithTheCapabilitiesTheyName() throws {
        let known = [row("gpt-4o", inputs: [.text, .image])]
        let builtIn = [row("gpt-*", inputs: [.text])]
        let families = try ModelFamilies.configured(["families": ["ft:*": "gpt-*", "ft:gpt-4o*": "gpt-4o"]], plugin: "openai",
                                                    models: known, builtIn: builtIn)
        XCTAssertEqual(families.map(\.id), ["ft:gpt-4o*", "ft:*", "gpt-*"])
        XCTAssertEqual(families[0].inputs, [.text, .image])
        XCTAssertEqual(families[0].maxImagePixels, 1_000)
        XCTAssertEqual(families[1].inputs, [.text])
        XCTAssertEqual(try ModelFamilies.configured([:], plugin: "openai", models: known, builtIn: builtIn).map(\.id), ["gpt-*"])
    }

    func testBadEntriesAreRefusedNamingThem() {
        let known = [row("gpt-4o", inputs: [.text])]
        for (config, message) in [
            (["families": ["ft-x": "gpt-4o"]], "openai: families key 'ft-x' must be a pattern with '*'"),
            (["families": ["ft-*": "gpt-9"]], "openai: families.ft-* must name a known model or family (one of gpt-4o)"),
            (["families": ["ft-*", "gpt-4o"]], "openai: families must be an object"),
        ] as [([String: Any], String)] {
            XCTAssertThrowsError(try ModelFamilies.configured(config, plugin: "openai", models: known, builtIn: [])) { error in
                XCTAssertTrue("\(error)".hasPrefix(message), "\(error)")
            }
        }
    }
}
