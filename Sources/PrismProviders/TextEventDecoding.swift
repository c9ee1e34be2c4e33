// The fast path of host->emit: a ProviderEvent that is only a text delta, decoded without
// protobuf-c (PluginCall.emit tries it first; TextEventDecodingTests hold it to the full decoder).
import Foundation

extension PluginCall {
    /// A ProviderEvent that is just a text delta, `{text: {text: "…"}}` (fields 1 and 1, the
    /// bytes every Swift plugin writes for one), decoded without protobuf-c's allocations; nil
    /// for any other bytes, and for text that is not valid UTF-8 or holds a NUL: those take the
    /// full decoder, so that its rules stay the only ones.
    static func textEvent(_ bytes: UnsafeRawBufferPointer) -> ProviderEvent? {
        /// A varint at `i` of at most 4 bytes (256 MiB, more than any event), and the index after it.
        func varint(_ i: Int) -> (value: Int, next: Int)? {
            var value = 0
            for k in 0..<4 where i + k < bytes.count {
                let b = bytes[i + k]
                value |= Int(b & 0x7F) << (7 * k)
                if b < 0x80 { return (value, i + k + 1) }
            }
            return nil
        }
        guard bytes.count >= 2, bytes[0] == 0x0A, let outer = varint(1), outer.next + outer.value == bytes.count else { return nil }
        if outer.value == 0 { return .text("") }
        guard bytes[outer.next] == 0x0A, let inner = varint(outer.next + 1), inner.next + inner.value == bytes.count else { return nil }
        let text = UnsafeRawBufferPointer(rebasing: bytes[inner.next...])
        guard memchr(text.baseAddress!, 0, text.count) == nil, let string = String(validating: text.assumingMemoryBound(to: UInt8.self), as: UTF8.self) else { return nil }
        return .text(string)
    }
}
