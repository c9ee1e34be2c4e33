// libvips inside PrismMedia: started once per process (thread-safely, with untrusted loaders
// blocked), an owning wrapper for VipsImage, and error text taken from libvips' error buffer.
import CPrismMedia
import CVips
import Foundation

/// The process-wide libvips runtime. Started on first use by any image or PDF operation.
enum Vips {
    // A static let is initialised exactly once, under swift_once, whichever thread gets here first.
    private static let started: Bool = prism_vips_startup("prism") == 0

    /// Starts libvips if needed; throws if it cannot be started at all.
    static func start() throws {
        guard started else { throw MediaError.libraryFailure("libvips failed to start: \(takeError())") }
    }

    /// The text of libvips' error buffer, which is then cleared.
    /// (The buffer is process-wide in 8.14; the text can carry another thread's error too.)
    static func takeError() -> String {
        guard let copy = vips_error_buffer_copy() else { return "unknown libvips error" }
        defer { g_free(copy) }
        let message = String(cString: copy).trimmingCharacters(in: .whitespacesAndNewlines)
        return message.isEmpty ? "unknown libvips error" : message
    }

    /// Runs a libvips call returning `VipsImage **out`, wrapping the result or throwing.
    static func make(_ what: String, _ call: (UnsafeMutablePointer<UnsafeMutablePointer<VipsImage>?>) -> Int32) throws -> VipsImageRef {
        var out: UnsafeMutablePointer<VipsImage>?
        guard call(&out) == 0, let image = out else {
            throw MediaError.libraryFailure("\(what): \(takeError())")
        }
        return VipsImageRef(image)
    }

    /// Runs a libvips saver into a g_malloc'd buffer and copies it into `Data`.
    static func save(_ what: String, _ call: (UnsafeMutablePointer<UnsafeMutableRawPointer?>, UnsafeMutablePointer<Int>) -> Int32) throws -> Data {
        var buffer: UnsafeMutableRawPointer?
        var length = 0
        guard call(&buffer, &length) == 0, let buffer else {
            throw MediaError.libraryFailure("\(what): \(takeError())")
        }
        defer { g_free(buffer) }
        return Data(bytes: buffer, count: length)
    }
}

/// Owns one reference to a `VipsImage`; libvips images are reference-counted GObjects.
final class VipsImageRef {
    let pointer: UnsafeMutablePointer<VipsImage>

    init(_ pointer: UnsafeMutablePointer<VipsImage>) { self.pointer = pointer }
    deinit { g_object_unref(pointer) }

    var width: Int { Int(vips_image_get_width(pointer)) }
    var height: Int { Int(vips_image_get_height(pointer)) }
    var bands: Int { Int(vips_image_get_bands(pointer)) }
    var hasAlpha: Bool { vips_image_hasalpha(pointer) != 0 }
    /// Pages (frames) in the file, whatever was loaded.
    var pageCount: Int { Int(vips_image_get_n_pages(pointer)) }
    var pageHeight: Int { Int(vips_image_get_page_height(pointer)) }
    /// EXIF orientation 1...8 (1 when absent).
    var orientation: Int { Int(vips_image_get_orientation(pointer)) }
    /// Whether the orientation swaps width and height (5...8).
    var orientationSwaps: Bool { vips_image_get_orientation_swap(pointer) != 0 }

    func has(_ field: String) -> Bool { vips_image_get_typeof(pointer, field) != 0 }

    /// Renders the whole pipeline into memory, so several encodes do not decode several times.
    func materialized() throws -> VipsImageRef {
        guard let copy = vips_image_copy_memory(pointer) else {
            throw MediaError.libraryFailure("rendering image: \(Vips.takeError())")
        }
        return VipsImageRef(copy)
    }
}
