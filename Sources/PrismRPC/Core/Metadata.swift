// Request and response metadata (HTTP/2 headers that are not gRPC's own), including binary
// `-bin` entries, plus the percent-encoding gRPC uses for `grpc-message`.

/// Custom metadata of a call: ordered, case-insensitive names, text or binary values.
///
/// Names ending in `-bin` carry bytes; they travel base64-encoded and are decoded on receipt,
/// so handlers always see the original bytes.
public struct Metadata: Sendable, Sequence {
    public enum Value: Sendable, Equatable {
        case text(String)
        case binary([UInt8])
    }

    public private(set) var entries: [(name: String, value: Value)] = []

    public init() {}

    public init(_ pairs: [(String, String)]) {
        for (name, value) in pairs { add(name, value) }
    }

    /// Adds a text entry; for a `-bin` name the string's UTF-8 bytes are sent as binary.
    public mutating func add(_ name: String, _ value: String) {
        let name = name.lowercased()
        if name.hasSuffix("-bin") {
            entries.append((name, .binary(Array(value.utf8))))
        } else {
            entries.append((name, .text(value)))
        }
    }

    public mutating func add(_ name: String, binary: [UInt8]) {
        entries.append((name.lowercased(), .binary(binary)))
    }

    public mutating func append(contentsOf other: Metadata) {
        entries += other.entries
    }

    /// The first text value for `name`.
    public subscript(name: String) -> String? {
        let name = name.lowercased()
        for entry in entries where entry.name == name {
            if case .text(let text) = entry.value { return text }
        }
        return nil
    }

    /// The first binary value for `name` (which should end in `-bin`).
    public func binary(_ name: String) -> [UInt8]? {
        let name = name.lowercased()
        for entry in entries where entry.name == name {
            if case .binary(let bytes) = entry.value { return bytes }
        }
        return nil
    }

    public var isEmpty: Bool { entries.isEmpty }

    public func makeIterator() -> IndexingIterator<[(name: String, value: Value)]> {
        entries.makeIterator()
    }

    /// Builds metadata from received header fields: gRPC's reserved and HTTP/2 pseudo headers
    /// are left out; `-bin` values are base64-decoded (entries that do not decode are dropped).
    static func fromWire(_ headers: [(String, String)]) -> Metadata {
        var metadata = Metadata()
        for (name, value) in headers where !isReserved(name) {
            if name.hasSuffix("-bin") {
                if let bytes = Base64.decode(value) { metadata.entries.append((name, .binary(bytes))) }
            } else {
                metadata.entries.append((name, .text(value)))
            }
        }
        return metadata
    }

    /// The header fields to send for this metadata.
    func wireHeaders() -> [(String, String)] {
        entries.compactMap { entry in
            guard !Metadata.isReserved(entry.name) else { return nil }
            switch entry.value {
            case .text(let text): return (entry.name, text)
            case .binary(let bytes): return (entry.name, Base64.encode(bytes))
            }
        }
    }

    static func isReserved(_ name: String) -> Bool {
        if name.hasPrefix(":") || name.hasPrefix("grpc-") { return true }
        switch name {
        case "content-type", "te", "user-agent", "content-length", "connection", "host": return true
        default: return false
        }
    }
}

/// gRPC's percent-encoding of `grpc-message`: bytes outside printable ASCII, and `%`, as `%XX`.
enum PercentEncoding {
    static func encode(_ string: String) -> String {
        var out = ""
        out.reserveCapacity(string.utf8.count)
        for byte in string.utf8 {
            if byte >= 0x20 && byte <= 0x7E && byte != UInt8(ascii: "%") {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "%" + hex(byte >> 4) + hex(byte & 0xF)
            }
        }
        return out
    }

    /// Decodes `%XX` sequences; malformed ones are kept as they are, as the spec asks.
    static func decode(_ string: String) -> String {
        let bytes = Array(string.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%"), i + 2 < bytes.count,
               let high = hexValue(bytes[i + 1]), let low = hexValue(bytes[i + 2]) {
                out.append(high << 4 | low)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hex(_ nibble: UInt8) -> String {
        String(UnicodeScalar(nibble < 10 ? nibble + 48 : nibble + 55))
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 65...70: return c - 55
        case 97...102: return c - 87
        default: return nil
        }
    }
}

/// Base64 for `-bin` metadata: encodes with padding, decodes with or without it.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 2 < bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], alphabet[Int(n & 63)]]
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let n = UInt32(bytes[i]) << 16
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], UInt8(ascii: "="), UInt8(ascii: "=")]
        } else if rest == 2 {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], UInt8(ascii: "=")]
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ string: String) -> [UInt8]? {
        var out: [UInt8] = []
        var accumulator: UInt32 = 0
        var bits = 0
        for c in string.utf8 {
            let value: UInt8
            switch c {
            case 65...90: value = c - 65
            case 97...122: value = c - 71
            case 48...57: value = c + 4
            case UInt8(ascii: "+"), UInt8(ascii: "-"): value = 62
            case UInt8(ascii: "/"), UInt8(ascii: "_"): value = 63
            case UInt8(ascii: "="): continue
            default: return nil
            }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        return out
    }
}
