// Real media made at test time by the libraries' own tools (vips, ffmpeg with lavfi sources,
// espeak-ng) plus hand-built hostile files; nothing binary is committed.
import Foundation
import PrismMedia
import XCTest

/// A temporary folder of generated media, removed when the test ends.
final class Fixtures {
    let dir: URL

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("prism-media-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
    func data(_ name: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path(name))) }
    func write(_ data: Data, _ name: String) throws -> String {
        try data.write(to: URL(fileURLWithPath: path(name)))
        return path(name)
    }

    /// Runs a tool and returns its standard output; fails the test (throws) when it exits non-zero.
    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) throws -> String {
        guard let executable = ["/usr/bin/", "/usr/local/bin/", "/bin/"].map({ $0 + tool }).first(where: FileManager.default.isExecutableFile) else {
            throw FixtureError.missingTool(tool)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw FixtureError.failed(tool + " " + arguments.joined(separator: " "), String(decoding: errors, as: UTF8.self))
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// `vips OPERATION ARGS...`
    @discardableResult
    func vips(_ arguments: String...) throws -> String { try Self.run("vips", arguments) }

    /// `ffmpeg -y -loglevel error ARGS...`
    func ffmpeg(_ arguments: String...) throws { try Self.run("ffmpeg", ["-y", "-nostdin", "-loglevel", "error"] + arguments) }

    /// `vipsheader -f FIELD FILE`, trimmed.
    func header(_ field: String, _ file: String) throws -> String {
        try Self.run("vipsheader", ["-f", field, file]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Width, height and bands of an image file as libvips reads it.
    func dimensions(_ file: String) throws -> (width: Int, height: Int, bands: Int) {
        let w = Int(try header("width", file))!, h = Int(try header("height", file))!, b = Int(try header("bands", file))!
        return (w, h, b)
    }

    /// Pixel values at (x, y).
    func pixel(_ file: String, _ x: Int, _ y: Int) throws -> [Double] {
        try vips("getpoint", file, String(x), String(y)).split(separator: " ").compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// A photo-like JPEG: smooth gradient plus noise, so it compresses like a photograph.
    func photoJPEG(_ name: String, width: Int, height: Int, quality: Int = 90) throws -> String {
        let base = path(name + ".v")
        try vips("xyz", path(name + "-xyz.v"), String(width), String(height))
        try vips("extract_band", path(name + "-xyz.v"), path(name + "-x.v"), "0")
        try vips("linear", path(name + "-x.v"), path(name + "-grad.v"), String(255.0 / Double(width)), "0", "--uchar")
        for channel in 0 ..< 3 {
            try vips("gaussnoise", path(name + "-noise\(channel).v"), String(width), String(height), "--sigma", "24", "--mean", "0")
            try vips("add", path(name + "-grad.v"), path(name + "-noise\(channel).v"), path(name + "-sum\(channel).v"))
        }
        try vips("bandjoin", (0 ..< 3).map { path(name + "-sum\($0).v") }.joined(separator: " "), path(name + "-rgb.v"))
        try vips("cast", path(name + "-rgb.v"), base, "uchar")
        try vips("copy", base, path(name) + "[Q=\(quality)]")
        return path(name)
    }
}

enum FixtureError: Error, CustomStringConvertible {
    case missingTool(String)
    case failed(String, String)

    var description: String {
        switch self {
        case let .missingTool(tool): return "\(tool) is not installed (the test needs it to make media)"
        case let .failed(command, stderr): return "\(command) failed: \(stderr)"
        }
    }
}

/// CRC-32 (IEEE), for building PNG chunks by hand.
func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0 ..< 8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}

func bigEndian32(_ value: UInt32) -> [UInt8] { [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }

/// A PNG whose IHDR claims `width` × `height` but which holds almost no data: a decompression bomb's header.
func pngHeaderOnly(width: UInt32, height: UInt32) -> Data {
    func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
        let typed = Array(type.utf8) + body
        return bigEndian32(UInt32(body.count)) + typed + bigEndian32(crc32(typed))
    }
    var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    png += chunk("IHDR", bigEndian32(width) + bigEndian32(height) + [8, 2, 0, 0, 0])
    png += chunk("IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])
    png += chunk("IEND", [])
    return Data(png)
}

/// Inserts an EXIF APP1 segment (orientation 6 and a GPS position) right after a JPEG's SOI.
func jpegWithEXIF(_ jpeg: Data, orientation: UInt16) -> Data {
    // Little-endian TIFF: IFD0 with Orientation and a GPS IFD pointer; GPS IFD with latitude ref and latitude.
    var tiff: [UInt8] = Array("II".utf8) + [0x2A, 0x00, 0x08, 0x00, 0x00, 0x00]
    func u16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
    func u32(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)] }
    let ifd0Offset: UInt32 = 8, gpsOffset = ifd0Offset + 2 + 2 * 12 + 4
    tiff += u16(2)
    tiff += u16(0x0112) + u16(3) + u32(1) + u16(orientation) + u16(0)          // Orientation
    tiff += u16(0x8825) + u16(4) + u32(1) + u32(gpsOffset)                     // GPSInfo IFD pointer
    tiff += u32(0)
    let rationalOffset = gpsOffset + 2 + 2 * 12 + 4
    tiff += u16(2)
    tiff += u16(0x0001) + u16(2) + u32(2) + Array("N".utf8) + [0, 0, 0]       // GPSLatitudeRef "N"
    tiff += u16(0x0002) + u16(5) + u32(3) + u32(rationalOffset)                // GPSLatitude
    tiff += u32(0)
    tiff += u32(48) + u32(1) + u32(51) + u32(1) + u32(2959) + u32(100)         // 48° 51' 29.59"
    let payload = Array("Exif".utf8) + [0, 0] + tiff
    let segment: [UInt8] = [0xFF, 0xE1] + [UInt8((payload.count + 2) >> 8), UInt8((payload.count + 2) & 0xFF)] + payload
    var bytes = [UInt8](jpeg)
    bytes.insert(contentsOf: segment, at: 2)
    return Data(bytes)
}

extension Data {
    func contains(ascii: String) -> Bool { range(of: Data(ascii.utf8)) != nil }
}

/// Targets for the media tests, shaped like vendors' (the real limits are the plugins' declarations,
/// turned into targets by PrismProviders' ModelLimits.imageTarget).
extension ImageTarget {
    /// A long edge, a pixel budget and a byte cap (Anthropic-like: 1568 px, 1.15 MP, 3.75 MiB).
    static let pixelBudget = ImageTarget(maxLongEdge: 1568, maxPixels: 1_150_000, maxBytes: 5 * 1024 * 1024 * 3 / 4,
                                         acceptedFormats: [.jpeg, .png, .webp, .gif])
    /// A short-edge limit (OpenAI-like `high` detail: 2048 px long, 768 px short).
    static let shortEdge = ImageTarget(maxLongEdge: 2048, maxShortEdge: 768, maxBytes: 20 * 1024 * 1024,
                                       acceptedFormats: [.jpeg, .png, .webp, .gif])
}
