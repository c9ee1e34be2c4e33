// The certificate authorities the host trusts for vendors' TLS (SSL_CERT_FILE, SSL_CERT_DIR), as
// curl, OpenSSL, Go and Python's httpx read them; libcurl itself ignores both variables.
import Foundation

/// The certificate authorities a client trusts to sign vendors' TLS certificates. Verification of
/// the peer and its host name is always on; this only says which CAs anchor it.
///
/// Read from the standard `SSL_CERT_FILE` (a PEM bundle, CURLOPT_CAINFO) and `SSL_CERT_DIR` (a
/// directory of hashed certificates as `openssl rehash` makes, CURLOPT_CAPATH). These are the
/// variables OpenSSL's own default paths, the curl tool, Go and Python's httpx (which the OpenAI
/// and Anthropic Python SDKs use) read, so a deployment that points its other clients at a private
/// CA or a TLS-inspecting proxy's CA needs nothing Prism-specific. libcurl itself ignores them: it
/// always loads the bundle and directory fixed when it was built, so they are passed on here. As
/// in OpenSSL, each variable replaces only its own default: `SSL_CERT_FILE` alone keeps libcurl's
/// built-in directory (on Debian /etc/ssl/certs, the system CAs), `SSL_CERT_DIR` alone keeps the
/// built-in bundle. An empty value counts as unset.
struct TrustStore: Sendable, Equatable, CustomStringConvertible {
    /// A PEM file of CA certificates; nil keeps libcurl's built-in bundle.
    var caFile: String?
    /// A directory of CA certificates named by subject hash; nil keeps libcurl's built-in one.
    var caDirectory: String?

    init(caFile: String? = nil, caDirectory: String? = nil) {
        self.caFile = caFile
        self.caDirectory = caDirectory
    }

    /// The trust store `SSL_CERT_FILE` and `SSL_CERT_DIR` in `environment` name.
    static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> TrustStore {
        func path(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        return TrustStore(caFile: path("SSL_CERT_FILE"), caDirectory: path("SSL_CERT_DIR"))
    }

    /// For error messages: where the trusted CAs were looked for (paths only, never secrets).
    var description: String {
        let named = [caFile.map { "SSL_CERT_FILE=\($0)" }, caDirectory.map { "SSL_CERT_DIR=\($0)" }].compactMap { $0 }
        return named.isEmpty ? "the system CAs, as SSL_CERT_FILE and SSL_CERT_DIR are unset" : named.joined(separator: ", ")
    }
}
