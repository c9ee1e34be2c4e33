// The client TLS of the host's own HTTP/2 connections to vendors (VendorConnection): one SSL_CTX
// for the process — TLS 1.2 or newer, the peer and its host name always verified against the
// TrustStore's CAs, ALPN h2 then http/1.1 — and the last resumable TLS session of each origin, so
// a second connection resumes instead of doing a full handshake.
import COpenSSL
import Foundation
import PrismRPC

// @unchecked: `context` is built in init and only read afterwards (OpenSSL lets many threads make
// SSL objects from one SSL_CTX); `sessions` is guarded by `lock`.
final class VendorTLS: @unchecked Sendable {
    /// The process's, from SSL_CERT_FILE and SSL_CERT_DIR; a failure says why every HTTPS
    /// exchange of the host's own client fails (an unreadable SSL_CERT_FILE).
    static let shared: Result<VendorTLS, TLSError> = {
        do throws(TLSError) { return .success(try VendorTLS(trustStore: .fromEnvironment())) } catch { return .failure(error) }
    }()

    let trustStore: TrustStore
    private let context: OpaquePointer
    private let lock = NSLock()
    /// origin ("host:port") → its last resumable session, one reference each.
    private var sessions: [String: OpaquePointer] = [:]

    init(trustStore: TrustStore) throws(TLSError) {
        self.trustStore = trustStore
        guard let context = SSL_CTX_new(TLS_client_method()) else { throw TLSError.openSSL("SSL_CTX_new") }
        self.context = context
        SSL_CTX_ctrl(context, SSL_CTRL_SET_MIN_PROTO_VERSION, Int(TLS1_2_VERSION), nil)
        // A write may take part of a buffer, and the buffer may move between retries (the
        // connection's outgoing bytes are an array that grows).
        SSL_CTX_ctrl(context, SSL_CTRL_MODE, Int(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER), nil)
        // One read(2) takes as many records as the socket holds (a vendor sends a small record per
        // delta and stream), not two per record (its header, then its body). What is read ahead
        // waits in OpenSSL, unseen by epoll: VendorConnection reads until SSL_ERROR_WANT_READ.
        SSL_CTX_ctrl(context, SSL_CTRL_SET_READ_AHEAD, 1, nil)  // SSL_CTX_set_read_ahead is a macro
        SSL_CTX_set_default_read_buffer_len(context, 64 << 10)
        // Sessions are kept here, per origin, not in OpenSSL's cache (which a client does not use).
        SSL_CTX_ctrl(context, SSL_CTRL_SET_SESS_CACHE_MODE, Int(SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE), nil)
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        // As TrustStore says: each variable replaces only its own default (OpenSSL's, which on
        // Debian are the system CAs: /usr/lib/ssl/cert.pem and /usr/lib/ssl/certs).
        if let file = trustStore.caFile {
            guard SSL_CTX_load_verify_file(context, file) == 1 else {
                SSL_CTX_free(context)
                throw TLSError(description: "TLS trust store cannot be read: SSL_CERT_FILE=\(file)")
            }
        } else {
            let file = String(cString: X509_get_default_cert_file())
            if FileManager.default.isReadableFile(atPath: file) { _ = SSL_CTX_load_verify_file(context, file) }
        }
        _ = SSL_CTX_load_verify_dir(context, trustStore.caDirectory ?? String(cString: X509_get_default_cert_dir()))
        ERR_clear_error()
        let alpn: [UInt8] = [2] + Array("h2".utf8) + [8] + Array("http/1.1".utf8)
        guard SSL_CTX_set_alpn_protos(context, alpn, UInt32(alpn.count)) == 0 else {
            SSL_CTX_free(context)
            throw TLSError.openSSL("SSL_CTX_set_alpn_protos")
        }
    }

    deinit {
        for session in sessions.values { SSL_SESSION_free(session) }
        SSL_CTX_free(context)
    }

    /// A client SSL for `host` on `fd`, checking the certificate names `host` (an IP address
    /// against the certificate's IP addresses), resuming the origin's last session if any.
    func client(fd: Int32, host: String, origin: String) -> OpaquePointer? {
        guard let ssl = SSL_new(context) else { return nil }
        SSL_set_fd(ssl, fd)
        SSL_set_connect_state(ssl)
        if Self.isIPAddress(host) {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host)
        } else {
            SSL_set1_host(ssl, host)
            // SSL_set_tlsext_host_name is a macro.
            _ = host.withCString { SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, Int(TLSEXT_NAMETYPE_host_name), UnsafeMutableRawPointer(mutating: $0)) }
        }
        lock.withLock {
            if let session = sessions[origin] { SSL_set_session(ssl, session) }
        }
        return ssl
    }

    /// Keeps `ssl`'s session for the origin's next connection, once it can be resumed (TLS 1.3
    /// sends its tickets after the handshake). True once kept.
    func keepSession(of ssl: OpaquePointer, origin: String) -> Bool {
        guard let session = SSL_get1_session(ssl) else { return false }
        guard SSL_SESSION_is_resumable(session) == 1 else {
            SSL_SESSION_free(session)
            return false
        }
        let old: OpaquePointer? = lock.withLock { sessions.updateValue(session, forKey: origin) }
        if let old { SSL_SESSION_free(old) }
        return true
    }

    /// Why the handshake on `ssl` failed, as the plugins' messages and the trust tests name it.
    func handshakeFailure(_ ssl: OpaquePointer) -> String {
        let verify = SSL_get_verify_result(ssl)
        if verify != X509_V_OK {
            let reason = String(cString: X509_verify_cert_error_string(verify))
            return "TLS certificate not accepted: \(reason) (trusted CAs: \(trustStore))"
        }
        return "TLS handshake failed: \(TLSError.openSSL("SSL_connect").description)"
    }

    static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}
