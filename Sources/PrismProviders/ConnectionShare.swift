// The connections, TLS sessions and DNS answers every host I/O loop shares (a curl share), so
// a call on one loop reuses the idle connection a call on another left open.
import CCurl
import Foundation

/// A curl share of connections, TLS sessions and DNS answers among all vendor exchanges, with
/// one lock per kind of data as curl asks (CURL_LOCK_DATA_CONNECT needs curl 7.57; Debian 12 has
/// 7.88). Lives as long as the process.
final class ConnectionShare: @unchecked Sendable {
    // @unchecked: curl calls the lock functions around every use of the shared data; `locks` never changes.

    /// The one share of the process, used by every HTTPExchange.
    static let shared = ConnectionShare()

    let handle: UnsafeMutableRawPointer
    /// Indexed by curl_lock_data; curl takes at most one lock of each kind at a time.
    let locks: [NSLock]

    private init() {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
        handle = curl_share_init()!
        locks = (0..<Int(CURL_LOCK_DATA_LAST.rawValue)).map { _ in NSLock() }
        prism_curl_share_set_pointer(handle, CURLSHOPT_USERDATA, Unmanaged.passUnretained(self).toOpaque())
        prism_curl_share_set_lock_fn(handle) { _, data, _, context in
            Unmanaged<ConnectionShare>.fromOpaque(context!).takeUnretainedValue().locks[Int(data.rawValue)].lock()
        }
        prism_curl_share_set_unlock_fn(handle) { _, data, context in
            Unmanaged<ConnectionShare>.fromOpaque(context!).takeUnretainedValue().locks[Int(data.rawValue)].unlock()
        }
        for data in [CURL_LOCK_DATA_CONNECT, CURL_LOCK_DATA_SSL_SESSION, CURL_LOCK_DATA_DNS] {
            prism_curl_share_set_long(handle, CURLSHOPT_SHARE, Int(data.rawValue))
        }
    }
}
