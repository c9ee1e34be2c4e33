// TLS settings and the OpenSSL SSL_CTX built from them: TLS 1.2 or newer, certificate and
// key from PEM files, optional client-certificate verification, and ALPN `h2`.
import COpenSSL

/// TLS settings for a server or a client.
public struct TLSConfiguration: Sendable {
    /// PEM certificate chain and private key (required for a server, optional client cert).
    public var certificateChainFile: String?
    public var privateKeyFile: String?
    /// PEM CA bundle: a server verifies client certificates against it (and then requires
    /// them); a client verifies the server against it (system roots when nil).
    public var trustRootsFile: String?
    /// Client only: the name to verify in the server certificate and to send as SNI.
    public var serverHostname: String?
    /// ALPN protocols offered or accepted, most preferred first.
    public var applicationProtocols = ["h2"]

    public init(certificateChainFile: String? = nil, privateKeyFile: String? = nil,
                trustRootsFile: String? = nil, serverHostname: String? = nil) {
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
        self.trustRootsFile = trustRootsFile
        self.serverHostname = serverHostname
    }
}

public struct TLSError: Error, CustomStringConvertible {
    public let description: String

    package init(description: String) {
        self.description = description
    }

    /// Captures OpenSSL's error queue after `what` failed.
    package static func openSSL(_ what: String) -> TLSError {
        var reasons: [String] = []
        while case let code = ERR_get_error(), code != 0 {
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            reasons.append(buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        return TLSError(description: reasons.isEmpty ? what : "\(what): \(reasons.joined(separator: "; "))")
    }
}

/// An SSL_CTX shared by every connection of a server or client. Immutable once built.
// @unchecked: every field is `let` and never written after init; OpenSSL allows one SSL_CTX to
// make SSL objects on many threads at once, and the ALPN buffer is only read.
final class TLSContext: @unchecked Sendable {
    let context: OpaquePointer
    let isServer: Bool
    /// ALPN list in wire form (length-prefixed names). Allocated once at a fixed address:
    /// OpenSSL's select callback returns a pointer into it.
    private let alpnWire: UnsafeMutableBufferPointer<UInt8>

    init(_ configuration: TLSConfiguration, server: Bool) throws {
        guard let ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()) else {
            throw TLSError.openSSL("SSL_CTX_new")
        }
        context = ctx
        isServer = server
        let wire = configuration.applicationProtocols.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
        alpnWire = .allocate(capacity: wire.count)
        _ = alpnWire.initialize(from: wire)
        SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, Int(TLS1_2_VERSION), nil)

        if let chain = configuration.certificateChainFile {
            guard SSL_CTX_use_certificate_chain_file(ctx, chain) == 1 else {
                throw TLSError.openSSL("cannot load certificate chain \(chain)")
            }
        }
        if let key = configuration.privateKeyFile {
            guard SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1, SSL_CTX_check_private_key(ctx) == 1 else {
                throw TLSError.openSSL("cannot load private key \(key) (or it does not match the certificate)")
            }
        }
        if server && (configuration.certificateChainFile == nil || configuration.privateKeyFile == nil) {
            throw TLSError(description: "a TLS server needs both a certificate chain and a private key")
        }
        if let roots = configuration.trustRootsFile {
            guard SSL_CTX_load_verify_locations(ctx, roots, nil) == 1 else {
                throw TLSError.openSSL("cannot load trust roots \(roots)")
            }
            let mode = server ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_PEER
            SSL_CTX_set_verify(ctx, mode, nil)
        } else if !server {
            SSL_CTX_set_default_verify_paths(ctx)
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        }

        if server {
            SSL_CTX_set_alpn_select_cb(ctx, { _, out, outLength, offered, offeredLength, arg in
                let me = Unmanaged<TLSContext>.fromOpaque(arg!).takeUnretainedValue()
                var selected: UnsafeMutablePointer<UInt8>?
                let rc = SSL_select_next_proto(&selected, outLength, me.alpnWire.baseAddress, UInt32(me.alpnWire.count),
                                               offered, offeredLength)
                guard rc == OPENSSL_NPN_NEGOTIATED else { return SSL_TLSEXT_ERR_ALERT_FATAL }
                out!.pointee = UnsafePointer(selected)
                return SSL_TLSEXT_ERR_OK
            }, Unmanaged.passUnretained(self).toOpaque())
        } else {
            guard SSL_CTX_set_alpn_protos(ctx, alpnWire.baseAddress, UInt32(alpnWire.count)) == 0 else {
                throw TLSError.openSSL("SSL_CTX_set_alpn_protos")
            }
        }
    }

    deinit {
        SSL_CTX_free(context)
        alpnWire.deallocate()
    }
}
