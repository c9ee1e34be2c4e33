// Sending a file as the data messages of a client stream (Transcribe's audio, IndexDocument's
// bytes): slices of a bounded size, each wrapped in one request message, with a progress bar.
import Foundation
import NIOCore
import PrismProto
import PrismRPC

extension ClientCall {
    /// Sends `data` in slices of at most `sliceBytes`, each set into a new message of the type
    /// `initializer` makes by `wrap`; `pace(offset)` runs before each slice (live pacing) and
    /// `bar` follows the bytes sent. Does not end the request stream.
    func sendSlices<Message>(of data: Data, sliceBytes: Int, bar: ProgressBar?, pace: ((Int) async throws -> Void)? = nil,
                             _ initializer: ProtoInitializer<Message>,
                             wrap: (UnsafeMutablePointer<Message>, ProtobufCBinaryData) -> Void) async throws {
        var offset = 0
        while offset < data.count {
            try await pace?(offset)
            let end = min(data.count, offset + sliceBytes)
            let builder = ProtoBuilder()
            let message = builder.message(initializer)
            wrap(message, data[offset..<end].withUnsafeBytes { builder.bytes($0) })
            var buffer = ByteBuffer()
            builder.pack(message, into: &buffer)
            try await send(buffer)
            offset = end
            bar?.update(offset)
        }
    }
}
