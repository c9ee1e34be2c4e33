// The SSRF guard of media fetched by URI: which IP addresses a fetch may connect to. MediaFetcher
// asks it for every socket curl is about to open (CURLOPT_OPENSOCKETFUNCTION), so the address
// checked is the one connected to, on every redirect hop, after any DNS answer.
import Foundation

/// An IPv4 or IPv6 address, in network byte order.
struct IPAddress: Hashable, CustomStringConvertible {
    /// 4 bytes for IPv4, 16 for IPv6.
    let bytes: [UInt8]

    init(bytes: [UInt8]) { self.bytes = bytes }

    /// Parses a literal IPv4 or IPv6 address ("127.0.0.1", "::1"); nil for anything else.
    init?(_ text: String) {
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
        } else {
            return nil
        }
    }

    /// The address of an AF_INET or AF_INET6 socket address; nil for another family.
    init?(_ address: UnsafeRawPointer, family: Int32) {
        switch family {
        case AF_INET:
            var v4 = address.loadUnaligned(as: sockaddr_in.self).sin_addr
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
        case AF_INET6:
            var v6 = address.loadUnaligned(as: sockaddr_in6.self).sin6_addr
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
        default:
            return nil
        }
    }

    var isIPv4: Bool { bytes.count == 4 }

    var description: String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        bytes.withUnsafeBytes { _ = inet_ntop(isIPv4 ? AF_INET : AF_INET6, $0.baseAddress, &text, socklen_t(text.count)) }
        return text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// Whether the first `bits` bits equal those of `network` (of the same family).
    func within(_ network: IPAddress, bits: Int) -> Bool {
        guard network.bytes.count == bytes.count else { return false }
        for bit in stride(from: 0, to: bits, by: 8) {
            let mask: UInt8 = bits - bit >= 8 ? 0xFF : ~(0xFF >> UInt8(bits - bit))
            if bytes[bit / 8] & mask != network.bytes[bit / 8] & mask { return false }
        }
        return true
    }

    /// The IPv4 address an IPv6 address carries in a form that reaches it (IPv4-mapped
    /// ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16); nil when none.
    /// A guard that looked at the IPv6 form alone would let ::ffff:127.0.0.1 through.
    var embeddedIPv4: IPAddress? {
        guard !isIPv4 else { return nil }
        if within(Self.mapped, bits: 96) || within(Self.nat64, bits: 96) { return IPAddress(bytes: Array(bytes[12..<16])) }
        if within(Self.compatible, bits: 96), bytes[12..<16].contains(where: { $0 != 0 }), self != Self.loopback6 {
            return IPAddress(bytes: Array(bytes[12..<16]))
        }
        if within(Self.sixToFour, bits: 16) { return IPAddress(bytes: Array(bytes[2..<6])) }
        return nil
    }

    private static let mapped = IPAddress("::ffff:0.0.0.0")!
    private static let nat64 = IPAddress("64:ff9b::")!
    private static let compatible = IPAddress("::")!
    private static let sixToFour = IPAddress("2002::")!
    static let loopback6 = IPAddress("::1")!
}

/// Networks a fetch refuses to connect to unless allowed, each with the phrase its refusal uses.
enum ForbiddenNetworks {
    private static let table: [(network: IPAddress, bits: Int, phrase: String)] = [
        ("169.254.169.254", 32, "the cloud metadata address"),
        ("0.0.0.0", 8, "an unspecified (\"this network\") address"),
        ("127.0.0.0", 8, "a loopback address"),
        ("10.0.0.0", 8, "a private address"),
        ("172.16.0.0", 12, "a private address"),
        ("192.168.0.0", 16, "a private address"),
        ("100.64.0.0", 10, "a carrier-grade NAT (shared) address"),
        ("169.254.0.0", 16, "a link-local address"),
        ("224.0.0.0", 4, "a multicast address"),
        ("240.0.0.0", 4, "a reserved or broadcast address"),
        ("::", 128, "the unspecified address"),
        ("::1", 128, "a loopback address"),
        ("fc00::", 7, "a private (unique local) address"),
        ("fec0::", 10, "a private (site-local) address"),
        ("fe80::", 10, "a link-local address"),
        ("ff00::", 8, "a multicast address"),
    ].map { (IPAddress($0.0)!, $0.1, $0.2) }

    /// Why `address` is refused ("a loopback address"), or nil for a public address.
    static func phrase(for address: IPAddress) -> String? {
        if let v4 = address.embeddedIPv4, let phrase = phrase(for: v4) {
            return "an IPv6 form of \(v4), \(phrase)"
        }
        return table.first { address.within($0.network, bits: $0.bits) }?.phrase
    }
}

/// `media.fetch.allow_hosts`: host names, addresses and CIDR ranges a fetch may reach even when
/// they are loopback, private or link-local. A host name allows whatever it resolves to; an
/// address or range allows connecting there whatever name led to it.
public struct FetchAllowList: Sendable, Equatable {
    private var hosts: Set<String> = []
    private var networks: [NetworkEntry] = []

    private struct NetworkEntry: Sendable, Equatable {
        let address: [UInt8]
        let bits: Int
    }

    public init() {}

    /// Reads entries such as "media.internal", "127.0.0.2", "[::1]", "10.1.0.0/16"; throws a
    /// message naming the first entry that is none of these (no schemes, ports or paths).
    public init(_ entries: [String]) throws {
        for raw in entries {
            var entry = raw.trimmingCharacters(in: .whitespaces).lowercased()
            if entry.hasPrefix("["), entry.hasSuffix("]") { entry = String(entry.dropFirst().dropLast()) }
            let problem = "media.fetch.allow_hosts entry '\(raw)' is not a host name, an IP address or a CIDR range (such as 10.0.0.0/8)"
            if let slash = entry.firstIndex(of: "/") {
                guard let address = IPAddress(String(entry[..<slash])), let bits = Int(entry[entry.index(after: slash)...]),
                      (0...address.bytes.count * 8).contains(bits) else { throw SettingsProblem(problem) }
                networks.append(NetworkEntry(address: address.bytes, bits: bits))
            } else if let address = IPAddress(entry) {
                networks.append(NetworkEntry(address: address.bytes, bits: address.bytes.count * 8))
            } else {
                let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-._")
                guard !entry.isEmpty, entry.allSatisfy(allowed.contains), !entry.hasPrefix("."), !entry.hasPrefix("-") else {
                    throw SettingsProblem(problem)
                }
                hosts.insert(entry.hasSuffix(".") ? String(entry.dropLast()) : entry)
            }
        }
    }

    public var isEmpty: Bool { hosts.isEmpty && networks.isEmpty }

    /// Whether a connection to `address`, reached through the URL host `host`, is allowed.
    func allows(host: String, address: IPAddress) -> Bool {
        var name = host.lowercased()
        if name.hasPrefix("["), name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        if name.hasSuffix(".") { name.removeLast() }
        if hosts.contains(name) { return true }
        let forms = [address] + (address.embeddedIPv4.map { [$0] } ?? [])
        return forms.contains { form in networks.contains { form.within(IPAddress(bytes: $0.address), bits: $0.bits) } }
    }

    /// Why connecting to `address` for `host` is refused, or nil when it may go ahead.
    func refusal(host: String, address: IPAddress) -> String? {
        guard let phrase = ForbiddenNetworks.phrase(for: address), !allows(host: host, address: address) else { return nil }
        return "resolves to \(address), \(phrase); allow it with media.fetch.allow_hosts"
    }
}

/// A bad `media.fetch` setting; the server's settings turn it into its startup error.
public struct SettingsProblem: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
