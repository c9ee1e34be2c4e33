// `--json` of every prism command: replies printed as proto3 JSON (the mapping Connect uses, so the
// fields are those of proto/prism/v1/prism.proto in lowerCamelCase), one document for a single
// answer, one document per line for a stream. Errors stay text on stderr, with a non-zero exit.
import ArgumentParser
import Foundation
import NIOCore
import PrismProto

/// The `--json` flag, shared by the commands through @OptionGroup.
struct JSONOption: ParsableArguments {
    @Flag(help: "Machine-readable output: one JSON document, or one per line for streamed answers.")
    var json = false
}

enum JSONOutput {
    /// Prints the message in `reply` (wire format, of the type `initializer` makes) as one line of
    /// proto3 JSON, flushed at once so a reader of a stream sees each event as it comes.
    static func message<Message>(_ initializer: ProtoInitializer<Message>, _ reply: ByteBuffer) throws {
        print(try ProtoJSON.encode(protoDescriptor(initializer), binary: reply))
        fflush(stdout)
    }

    /// Prints `value` as one line of JSON (keys sorted).
    static func value<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(value), as: UTF8.self))
        fflush(stdout)
    }
}
