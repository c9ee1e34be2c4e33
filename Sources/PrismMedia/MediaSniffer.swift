// Decides a format from the bytes themselves (magic numbers and container brands), because a
// client's declared MIME type is a claim: it is reported when it disagrees, never trusted.
import Foundation

/// Format detection from content, no decoding.
public enum MediaSniffer {
    /// The result of comparing what the bytes are with what the client said they are.
    public struct Verdict: Sendable, Equatable {
        /// The format the bytes are.
        public var format: MediaFormat
        /// The MIME type the client declared, as given.
        public var declaredMime: String?
        /// The format that MIME type names, if any.
        public var declaredFormat: MediaFormat?
        /// True when a declared type names a different format (or none) than the bytes are.
        public var mismatch: Bool {
            guard let declaredMime else { return false }
            guard let declaredFormat else { return !declaredMime.isEmpty }
            return !Self.equivalent(declaredFormat, format)
        }

        // Containers with several names for the same bytes do not count as a mismatch.
        static func equivalent(_ a: MediaFormat, _ b: MediaFormat) -> Bool {
            if a == b { return true }
            let families: [Set<MediaFormat>] = [[.ogg, .opus], [.mp4, .m4a, .mov], [.webm, .matroska], [.heic, .avif]]
            return families.contains { $0.contains(a) && $0.contains(b) }
        }
    }

    /// The format of `bytes`, or `.unknown`. Looks at most at the first 4 KiB.
    public static func sniff(_ bytes: Data) -> MediaFormat {
        let head = [UInt8](bytes.prefix(4096))
        return sniff(head: head)
    }

    /// Sniffs `bytes` and compares with a declared MIME type.
    public static func verdict(_ bytes: Data, declaredMime: String?) -> Verdict {
        Verdict(format: sniff(bytes), declaredMime: declaredMime,
                declaredFormat: declaredMime.flatMap(MediaFormat.init(mimeType:)))
    }

    static func sniff(head b: [UInt8]) -> MediaFormat {
        func at(_ offset: Int, _ ascii: String) -> Bool {
            let pattern = Array(ascii.utf8)
            return b.count >= offset + pattern.count && Array(b[offset ..< offset + pattern.count]) == pattern
        }
        func starts(_ bytes: [UInt8]) -> Bool { b.count >= bytes.count && Array(b.prefix(bytes.count)) == bytes }

        if starts([0xFF, 0xD8, 0xFF]) { return .jpeg }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if at(0, "GIF87a") || at(0, "GIF89a") { return .gif }
        if at(0, "RIFF") && at(8, "WEBP") { return .webp }
        if at(0, "RIFF") && at(8, "WAVE") { return .wav }
        if at(0, "RIFF") && at(8, "AVI ") { return .avi }
        if at(0, "FORM") && (at(8, "AIFF") || at(8, "AIFC")) { return .aiff }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { return .tiff }
        if at(0, "fLaC") { return .flac }
        if at(0, "OggS") { return at(28, "OpusHead") ? .opus : .ogg }
        if starts([0x1A, 0x45, 0xDF, 0xA3]) { return containsASCII(b.prefix(64), "webm") ? .webm : .matroska }
        if at(4, "ftyp") { return isoBrand(b) }
        if firstIndex(of: "%PDF-", in: b.prefix(1024)) != nil { return .pdf }
        if at(0, "ID3") { return .mp3 }
        if b.count >= 2 && b[0] == 0xFF {
            // ADTS AAC: sync 0xFFF with layer bits 00; MPEG audio (MP3): sync 0xFFE with a non-reserved layer.
            if b[1] & 0xF6 == 0xF0 { return .aac }
            if b[1] & 0xE0 == 0xE0 && b[1] & 0x06 != 0 { return .mp3 }
        }
        if at(0, "BM") && b.count >= 18 {
            // A two-byte magic is weak; also require a known DIB header size.
            let dib = Int(b[14]) | Int(b[15]) << 8 | Int(b[16]) << 16 | Int(b[17]) << 24
            if [12, 40, 52, 56, 64, 108, 124].contains(dib) { return .bmp }
        }
        if looksLikeSVG(b) { return .svg }
        return .unknown
    }

    private static func isoBrand(_ b: [UInt8]) -> MediaFormat {
        // Major brand at 8, compatible brands from 16 up to the box size.
        let boxSize = b.count >= 4 ? Int(b[0]) << 24 | Int(b[1]) << 16 | Int(b[2]) << 8 | Int(b[3]) : 0
        var brands: [String] = []
        var offset = 8
        while offset + 4 <= min(max(boxSize, 16), b.count) {
            if offset != 12 { brands.append(String(decoding: b[offset ..< offset + 4], as: UTF8.self)) }
            offset += 4
        }
        let major = brands.first ?? ""
        if ["avif", "avis"].contains(major) { return .avif }
        if ["heic", "heix", "hevc", "hevx", "heim", "heis"].contains(major) { return .heic }
        if ["mif1", "msf1"].contains(major) { return brands.contains("avif") ? .avif : .heic }
        if major.hasPrefix("M4A") || major.hasPrefix("M4B") { return .m4a }
        if major == "qt  " { return .mov }
        return .mp4
    }

    private static func looksLikeSVG(_ b: [UInt8]) -> Bool {
        let text = String(decoding: b.prefix(4096), as: UTF8.self).lowercased()
        let trimmed = text.drop { $0 == "\u{feff}" || $0.isWhitespace }
        return (trimmed.hasPrefix("<svg") || trimmed.hasPrefix("<?xml") || trimmed.hasPrefix("<!doctype svg"))
            && text.contains("<svg")
    }

    private static func containsASCII<C: Collection>(_ bytes: C, _ ascii: String) -> Bool where C.Element == UInt8 {
        firstIndex(of: ascii, in: bytes) != nil
    }

    private static func firstIndex<C: Collection>(of ascii: String, in bytes: C) -> Int? where C.Element == UInt8 {
        let pattern = Array(ascii.utf8), hay = Array(bytes)
        guard hay.count >= pattern.count else { return nil }
        for i in 0 ... hay.count - pattern.count where hay[i] == pattern[0] && Array(hay[i ..< i + pattern.count]) == pattern {
            return i
        }
        return nil
    }
}
