// A minimal protobuf encoder for the few messages a Swift plugin sends (ProviderEvent,
// ProviderInfo): varints and length-delimited fields, enough to avoid C pointer juggling.
import Foundation

/// Appends protobuf fields to a byte buffer. Zero scalars and empty strings are skipped, as
/// proto3 does; `message` always writes its field so that a oneof case is set even when empty.
struct ProtoWriter {
    private(set) var bytes: [UInt8] = []

    init() {}

    /// A writer whose buffer holds `capacity` bytes before it grows: one allocation per event.
    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    private mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    private mutating func tag(_ field: Int, _ wireType: UInt64) { varint(UInt64(field) << 3 | wireType) }

    mutating func uint(_ field: Int, _ value: UInt64) {
        guard value != 0 else { return }
        tag(field, 0)
        varint(value)
    }

    mutating func bool(_ field: Int, _ value: Bool) { uint(field, value ? 1 : 0) }

    mutating func double(_ field: Int, _ value: Double) {
        guard value != 0 else { return }
        tag(field, 1)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 }
    }

    mutating func data(_ field: Int, _ value: [UInt8]) {
        guard !value.isEmpty else { return }
        tag(field, 2)
        varint(UInt64(value.count))
        bytes += value
    }

    /// The string's UTF-8 goes straight into the buffer, without an intermediate array.
    mutating func string(_ field: Int, _ value: String) {
        let utf8 = value.utf8
        guard !utf8.isEmpty else { return }
        tag(field, 2)
        varint(UInt64(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    /// A nested message, built in place: its fields are written first, then its length is
    /// inserted in front of them (a short move, instead of a second buffer per message).
    mutating func message(_ field: Int, _ build: (inout ProtoWriter) -> Void) {
        tag(field, 2)
        let start = bytes.count
        build(&self)
        let length = bytes.count - start
        if length < 0x80 {
            bytes.insert(UInt8(length), at: start)
        } else {
            var prefix = ProtoWriter()
            prefix.varint(UInt64(length))
            bytes.insert(contentsOf: prefix.bytes, at: start)
        }
    }

    /// A repeated enum, written unpacked (every protobuf parser accepts both forms).
    mutating func enums(_ field: Int, _ values: [Int]) {
        for v in values {
            tag(field, 0)
            varint(UInt64(v))
        }
    }
}
