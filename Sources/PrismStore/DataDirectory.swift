// The data folder that holds the embedded store: where it is (PRISM_DATA_DIR, else a `prism`
// folder under $XDG_DATA_HOME or ~/.local/share) and making sure it exists, private and writable
// before the server starts, so a bad folder is a clear startup error rather than a failed request.
import Foundation

public enum DataDirectory {
    /// The folder the environment names: PRISM_DATA_DIR, $XDG_DATA_HOME/prism, or
    /// ~/.local/share/prism (the XDG default); nil when none can be worked out (no HOME).
    public static func resolve(_ environment: [String: String]) -> String? {
        if let dir = environment["PRISM_DATA_DIR"], !dir.isEmpty { return dir }
        if let xdg = environment["XDG_DATA_HOME"], xdg.hasPrefix("/") { return xdg + "/prism" }
        if let home = environment["HOME"], !home.isEmpty { return home + "/.local/share/prism" }
        return nil
    }

    /// Creates `path` (and missing parents) with mode 0700 if absent; then checks it is a folder
    /// this process can write. An existing folder keeps its mode: the operator chose it.
    public static func prepare(_ path: String) throws {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw StoreError("cannot create the data folder \(path) (PRISM_DATA_DIR): \(error.localizedDescription)")
            }
            isDirectory = true
        }
        guard isDirectory.boolValue else { throw StoreError("the data folder \(path) (PRISM_DATA_DIR) is not a folder") }
        // access(2) can be wrong on some network filesystems; creating a file is the real test.
        let probe = path + "/.prism-write-test-\(getpid())"
        let fd = open(probe, O_CREAT | O_WRONLY | O_EXCL, 0o600)
        guard fd >= 0 else {
            throw StoreError("the data folder \(path) (PRISM_DATA_DIR) is not writable by this process: \(String(cString: strerror(errno)))")
        }
        close(fd)
        unlink(probe)
    }
}
