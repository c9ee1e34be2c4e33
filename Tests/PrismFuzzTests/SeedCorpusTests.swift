// Replays every committed fuzz input (fuzz/corpus/<target>: seeds; fuzz/regressions/<target>:
// inputs that once broke Prism, kept as regression tests) through its target, without libFuzzer:
// a target traps on a broken invariant, so a regression fails `swift test`.
import Foundation
import PrismFuzz
import XCTest

final class SeedCorpusTests: XCTestCase {
    static let fuzzFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("fuzz")

    func files(_ folder: String, _ target: String) throws -> [URL] {
        let url = Self.fuzzFolder.appendingPathComponent(folder).appendingPathComponent(target)
        guard FileManager.default.fileExists(atPath: url.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(at: url, includingPropertiesForKeys: nil)
            .filter { !$0.lastPathComponent.hasPrefix(".") }.sorted { $0.path < $1.path }
    }

    /// Every target has seeds, and every seed and reproducer runs through it without trapping.
    func testEveryCommittedInputRunsCleanly() throws {
        for target in FuzzTargets.all {
            let seeds = try files("corpus", target.name)
            XCTAssertFalse(seeds.isEmpty, "fuzz/corpus/\(target.name) holds no seed")
            for file in seeds + (try files("regressions", target.name)) {
                target.run([UInt8](try Data(contentsOf: file)))
            }
        }
    }

    /// The corpus folders are the targets: a folder with no target would be dead weight.
    func testEveryCorpusFolderHasATarget() throws {
        let folders = try FileManager.default.contentsOfDirectory(atPath: Self.fuzzFolder.appendingPathComponent("corpus").path)
        for folder in folders where !folder.hasPrefix(".") {
            XCTAssertNotNil(FuzzTargets.named(folder), "fuzz/corpus/\(folder) matches no fuzz target")
        }
    }
}
