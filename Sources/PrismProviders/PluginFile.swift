// The plugin folder's rules: which files are plugins (libprism-plugin-*.so), which files and
// folders are safe to load from (not writable by others, owned by us or root), and the private
// copy that is actually dlopened so a file replaced on disk never changes code already running.
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What identifies one version of a plugin file: a replaced file differs in one of these.
struct PluginFileIdentity: Equatable, Sendable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var modified: Int64

    init(_ s: stat) {
        device = UInt64(s.st_dev)
        inode = UInt64(s.st_ino)
        size = Int64(s.st_size)
        modified = Int64(s.st_mtim.tv_sec) * 1_000_000_000 + Int64(s.st_mtim.tv_nsec)
    }
}

enum PluginFile {
    /// The naming rule: only `libprism-plugin-NAME.so` files in a plugin folder are loaded, so
    /// the folder can be SwiftPM's build output (full of other libraries) without surprises.
    static let prefix = "libprism-plugin-"
    static let suffix = ".so"

    static func isPluginName(_ name: String) -> Bool {
        name.hasPrefix(prefix) && name.hasSuffix(suffix) && name.count > prefix.count + suffix.count && !name.hasPrefix(".")
    }

    /// "example" for libprism-plugin-example.so: the key of the plugin's config.
    static func stem(_ name: String) -> String {
        String(name.dropFirst(prefix.count).dropLast(suffix.count))
    }

    /// Why `s` (of a file or folder) may not be trusted, or nil: code anyone else can change
    /// must not run inside the gateway.
    static func refusal(_ s: stat, what: String) -> String? {
        let owner = s.st_uid
        if owner != geteuid() && owner != 0 {
            return "\(what) is owned by uid \(owner), not by the server's user (\(geteuid())) or root"
        }
        if s.st_mode & (S_IWGRP | S_IWOTH) != 0 {
            return "\(what) is writable by group or others (mode \(String(s.st_mode & 0o7777, radix: 8)))"
        }
        return nil
    }

    /// Checks a plugin folder; nil when it is safe.
    static func folderRefusal(_ path: String) -> String? {
        var s = stat()
        guard stat(path, &s) == 0 else { return "folder \(path) cannot be read: \(String(cString: strerror(errno)))" }
        return refusal(s, what: "folder \(path)")
    }

    /// The identity of the file at `path` without following a symlink at the last component.
    static func identity(_ path: String) -> PluginFileIdentity? {
        var s = stat()
        guard lstat(path, &s) == 0 else { return nil }
        return PluginFileIdentity(s)
    }

    /// Opens `path` (refusing symlinks), checks the opened file, and copies it into
    /// `shadowFolder`. The checks and the copy read the same open file, so the file cannot be
    /// swapped between them. Returns the copy's path and the identity of what was checked.
    static func secureCopy(_ path: String, into shadowFolder: String, tag: Int) throws -> (copy: String, identity: PluginFileIdentity) {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw LoadError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var s = stat()
        guard fstat(fd, &s) == 0 else { throw LoadError("cannot stat \(path): \(String(cString: strerror(errno)))") }
        guard s.st_mode & S_IFMT == S_IFREG else { throw LoadError("\(path) is not a regular file") }
        if let why = refusal(s, what: "file \(path)") { throw LoadError(why) }
        guard Int(s.st_size) <= ProviderLimits.maxPluginFileBytes else {
            throw LoadError("\(path) is \(s.st_size) bytes, over the \(ProviderLimits.maxPluginFileBytes)-byte plugin limit")
        }

        let copy = "\(shadowFolder)/\(tag)-\((path as NSString).lastPathComponent)"
        let out = open(copy, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o500)
        guard out >= 0 else { throw LoadError("cannot create \(copy): \(String(cString: strerror(errno)))") }
        defer { close(out) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { unlink(copy); throw LoadError("cannot read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            var written = 0
            while written < n {
                let w = buffer.withUnsafeBytes { write(out, $0.baseAddress! + written, n - written) }
                guard w > 0 else { unlink(copy); throw LoadError("cannot write \(copy): \(String(cString: strerror(errno)))") }
                written += w
            }
        }
        return (copy, PluginFileIdentity(s))
    }

    /// A private folder (mode 0700) for the copies that get dlopened.
    static func makeShadowFolder() throws -> String {
        // mkdtemp replaces the trailing six X's of its template with a unique suffix.
        let uniqueSuffix = String(repeating: "X", count: 6)
        var template = Array("\(NSTemporaryDirectory())/prism-plugins-\(uniqueSuffix)".utf8CString)
        guard let made = mkdtemp(&template) else { throw LoadError("cannot create a private folder for plugin copies: \(String(cString: strerror(errno)))") }
        return String(cString: made)
    }
}

/// Why a plugin did not load; becomes its FAILED reason.
struct LoadError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
