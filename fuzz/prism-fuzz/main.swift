// The `prism-fuzz` executable (built only with PRISM_FUZZ=1, by tools/fuzz.sh): hands libFuzzer
// its arguments and, as the input callback, the target (Sources/PrismFuzz) PRISM_FUZZ_TARGET names.
import Foundation
import PrismFuzz

/// libFuzzer's own driver (in the toolchain's libclang_rt.fuzzer): parses its flags, runs the
/// corpus and the fuzzing loop, and returns the exit code. SwiftPM gives executables their own
/// `main`, so libFuzzer's is not used and its driver is called from ours.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ testOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// The target chosen at start-up, before libFuzzer calls back (a C callback captures nothing).
enum Selected {
    nonisolated(unsafe) static var target: FuzzTarget!
}

let name = ProcessInfo.processInfo.environment["PRISM_FUZZ_TARGET"] ?? ""
Selected.target = FuzzTargets.named(name)
if Selected.target == nil {
    let targets = FuzzTargets.all.map { "  \($0.name): \($0.summary)\n" }.joined()
    FileHandle.standardError.write(Data("prism-fuzz: set PRISM_FUZZ_TARGET to one of these (it is '\(name)'):\n\(targets)".utf8))
    exit(2)
}

// libFuzzer may keep pointers into argv for the whole run: these copies are never freed.
var arguments: [UnsafeMutablePointer<CChar>?] = CommandLine.arguments.map { strdup($0) } + [nil]
var argc = CInt(CommandLine.arguments.count)
let status = arguments.withUnsafeMutableBufferPointer { buffer -> CInt in
    var argv = buffer.baseAddress
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        Selected.target.run(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }
}
exit(status)
