// The fuzz targets by name, and the helpers they share: a target takes arbitrary bytes, runs
// them through one parser or pipeline of Prism, and traps when an invariant breaks (libFuzzer
// then saves the input). tools/fuzz.sh runs them under libFuzzer; PrismFuzzTests replays the
// committed corpora through them in every `swift test`.
import Foundation

/// One fuzz target: a name (the corpus folder fuzz/corpus/<name>) and the code it exercises.
public struct FuzzTarget: Sendable {
    public let name: String
    /// What the target feeds the input to (prism-fuzz lists the targets with it).
    public let summary: String
    /// Runs one input. Returns normally for any input Prism refuses cleanly; traps otherwise.
    public let run: @Sendable (UnsafeRawBufferPointer) -> Void

    public init(name: String, summary: String, run: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) {
        self.name = name
        self.summary = summary
        self.run = run
    }

    /// Runs one input held in an array.
    public func run(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { run($0) }
    }
}

public enum FuzzTargets {
    /// Every target, in the order tools/fuzz.sh runs them.
    public static let all: [FuzzTarget] = [
        WireFuzzTargets.framing, WireFuzzTargets.gzip, WireFuzzTargets.connection,
        ProtoFuzzTargets.protobuf, ProtoFuzzTargets.protoJSON,
        JSONFuzzTargets.json, JSONFuzzTargets.schema,
        PluginKitFuzzTargets.sse, PluginKitFuzzTargets.multipart,
        MediaFuzzTargets.media,
    ]

    public static func named(_ name: String) -> FuzzTarget? {
        all.first { $0.name == name }
    }
}

/// Reads structure out of fuzz input: leading bytes pick options, the rest is the payload,
/// cut into chunks so streaming parsers see their input split at arbitrary places.
struct FuzzInput {
    private(set) var bytes: ArraySlice<UInt8>

    init(_ raw: UnsafeRawBufferPointer) {
        bytes = ArraySlice(raw)
    }

    /// The next byte as an option (0 once the input is used up).
    mutating func byte() -> UInt8 {
        bytes.popFirst() ?? 0
    }

    /// What is left, cut into chunks whose sizes come from `seed` (1 ... 64 bytes, or whole).
    func chunks(seed: UInt8) -> [ArraySlice<UInt8>] {
        guard seed != 0 else { return [bytes] }
        var out: [ArraySlice<UInt8>] = []
        var start = bytes.startIndex
        var state = UInt32(seed)
        while start < bytes.endIndex {
            state = state &* 1_103_515_245 &+ 12_345
            let size = Int((state >> 16) % 64) + 1
            let end = min(bytes.endIndex, start + size)
            out.append(bytes[start..<end])
            start = end
        }
        return out
    }

    /// Splits the rest at its first NUL: (before, after); after is nil without a NUL.
    func splitAtNUL() -> (ArraySlice<UInt8>, ArraySlice<UInt8>?) {
        guard let nul = bytes.firstIndex(of: 0) else { return (bytes, nil) }
        return (bytes[bytes.startIndex..<nul], bytes[(nul + 1)...])
    }
}

/// An invariant of Prism broke on this input: trap, so libFuzzer keeps the input.
func fuzzFailure(_ what: String, file: StaticString = #file, line: UInt = #line) -> Never {
    fatalError("fuzz invariant broken: \(what)", file: file, line: line)
}
