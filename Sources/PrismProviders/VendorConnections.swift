// A host I/O loop's HTTP/2 connections to vendors, by origin: an exchange joins a connection with
// room for another stream, or a new one is made. An origin whose TLS handshake did not choose h2
// is carried by curl from then on.
import CPrismPlugin
import Foundation

/// Loop thread only (one per loop, `HostIOLoop.vendorConnections`).
final class VendorConnections {
    /// Whether HTTPS exchanges use the host's own HTTP/2 client. Off with
    /// PRISM_VENDOR_HTTP2=off, and when a proxy is configured (curl honours the proxy variables).
    static let enabled: Bool = {
        let environment = ProcessInfo.processInfo.environment
        if environment["PRISM_VENDOR_HTTP2"] == "off" { return false }
        let proxies = ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
        return !proxies.contains { !(environment[$0] ?? "").isEmpty }
    }()

    private unowned let loop: HostIOLoop
    private var byOrigin: [String: [VendorConnection]] = [:]
    private var http1Only: Set<String> = []

    init(loop: HostIOLoop) {
        self.loop = loop
    }

    /// Carries `exchange` on a connection to `origin` (or hands it to curl).
    func submit(_ exchange: HTTPExchange, to origin: VendorOrigin) {
        if http1Only.contains(origin.key) { return exchange.startOverCurl() }
        if let connection = byOrigin[origin.key]?.first(where: \.hasRoom) {
            return connection.submit(exchange)
        }
        guard case .success(let tls) = VendorTLS.shared else {
            if case .failure(let error) = VendorTLS.shared { exchange.ended(status: PRISM_STATUS_UNAVAILABLE, message: error.description) }
            return
        }
        let connection = VendorConnection(origin: origin, loop: loop, pool: self, tls: tls)
        byOrigin[origin.key, default: []].append(connection)
        connection.submit(exchange)
    }

    /// A connection that takes no new streams any more (closed, or going away).
    func remove(_ connection: VendorConnection) {
        byOrigin[connection.origin.key]?.removeAll { $0 === connection }
        if byOrigin[connection.origin.key]?.isEmpty == true { byOrigin[connection.origin.key] = nil }
    }

    /// The origin's TLS chose HTTP/1.1: curl carries its exchanges, `handed` first.
    func speaksHTTP1Only(_ origin: VendorOrigin, handing handed: [HTTPExchange]) {
        http1Only.insert(origin.key)
        for exchange in handed { exchange.startOverCurl() }
    }
}
