// Where an HTTPS URL a plugin asks for points, for the host's own HTTP/2 client: the origin (the
// host its certificate must name, the port, :authority), the request's :path, and the origin's
// addresses (getaddrinfo, off the I/O loop).
// CCurl for sys/socket.h's SOCK_* constants: in this module's graph Swift sees them through curl's
// headers (as OriginFetcher does), not through Glibc.
import CCurl
import Foundation

/// Where an HTTPS URL points: the host the certificate must name, its port, the `:authority`.
struct VendorOrigin: Hashable {
    let host: String
    let port: UInt16
    let authority: String
    /// "host:port", the key of its connections and TLS sessions.
    var key: String { "\(host):\(port)" }

    /// The origin of an `https://` URL; nil for anything else (curl's).
    init?(url: String) {
        guard url.hasPrefix("https://") else { return nil }
        let rest = url.dropFirst("https://".count)
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.isEmpty, !authority.contains("@") else { return nil }
        var host = Substring(authority)
        var port: UInt16 = 443
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let after = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if after.hasPrefix(":") {
                guard let number = UInt16(after.dropFirst()) else { return nil }
                port = number
            } else if !after.isEmpty { return nil }
        } else if let colon = host.lastIndex(of: ":") {
            guard let number = UInt16(host[host.index(after: colon)...]) else { return nil }
            port = number
            host = host[..<colon]
        }
        guard !host.isEmpty else { return nil }
        self.host = host.lowercased()
        self.port = port
        self.authority = String(authority)
    }

    /// The `:path` of `url` on this origin: its path and query, "/" when it has none.
    func path(of url: String) -> String {
        let rest = url.dropFirst("https://".count).drop { $0 != "/" && $0 != "?" && $0 != "#" }
        let path = rest.prefix { $0 != "#" }
        if path.isEmpty { return "/" }
        return path.hasPrefix("?") ? "/" + path : String(path)
    }
}

/// One address to connect to.
struct VendorAddress: Sendable {
    let family: Int32
    let bytes: [UInt8]

    struct Failure: Error {
        let message: String
    }

    func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        bytes.withUnsafeBytes { body($0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count)) }
    }

    /// The addresses of `origin`: at once for an IP address, else from getaddrinfo on a
    /// background thread (it blocks). `done` runs on that thread or the caller's.
    static func resolve(_ origin: VendorOrigin, _ done: @escaping @Sendable (Result<[VendorAddress], Failure>) -> Void) {
        let host = origin.host
        let port = origin.port
        let lookup: @Sendable () -> Void = {
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            hints.ai_family = AF_UNSPEC
            var list: UnsafeMutablePointer<addrinfo>?
            let rc = getaddrinfo(host, String(port), &hints, &list)
            guard rc == 0 else { return done(.failure(Failure(message: String(cString: gai_strerror(rc))))) }
            defer { freeaddrinfo(list) }
            var found: [VendorAddress] = []
            var next = list
            while let entry = next?.pointee {
                if let address = entry.ai_addr {
                    found.append(VendorAddress(family: entry.ai_family,
                                               bytes: Array(UnsafeRawBufferPointer(start: address, count: Int(entry.ai_addrlen)))))
                }
                next = entry.ai_next
            }
            done(found.isEmpty ? .failure(Failure(message: "no address")) : .success(found))
        }
        if VendorTLS.isIPAddress(host) { lookup() } else { DispatchQueue.global().async(execute: lookup) }
    }
}
