// The pieces of Media.uri that need no origin: the SSRF guard's address classes (IPv4-in-IPv6
// forms included) and allow list, data: URI decoding, and MediaFetcher.resolve filling media in
// messages and tool results, refusing a loopback address before any connection.
import Foundation
@testable import PrismProviders
import XCTest

final class MediaFetchTests: XCTestCase {
    func testAddressClasses() {
        let cases: [(String, String?)] = [
            ("127.0.0.1", "a loopback address"), ("127.255.255.254", "a loopback address"),
            ("10.0.0.1", "a private address"), ("172.16.0.1", "a private address"), ("172.31.255.255", "a private address"),
            ("172.32.0.1", nil), ("192.168.1.1", "a private address"), ("169.254.169.254", "the cloud metadata address"),
            ("169.254.1.1", "a link-local address"), ("100.64.0.1", "a carrier-grade NAT (shared) address"), ("100.128.0.1", nil),
            ("0.0.0.0", "an unspecified (\"this network\") address"), ("224.0.0.1", "a multicast address"),
            ("255.255.255.255", "a reserved or broadcast address"), ("8.8.8.8", nil),
            ("::1", "a loopback address"), ("::", "the unspecified address"), ("fd00::1", "a private (unique local) address"),
            ("fe80::1", "a link-local address"), ("ff02::1", "a multicast address"), ("2001:4860:4860::8888", nil),
            ("::ffff:127.0.0.1", "an IPv6 form of 127.0.0.1, a loopback address"), ("::ffff:8.8.8.8", nil),
            ("64:ff9b::a9fe:a9fe", "an IPv6 form of 169.254.169.254, the cloud metadata address"),
            ("2002:7f00:1::", "an IPv6 form of 127.0.0.1, a loopback address"),
            ("::10.0.0.1", "an IPv6 form of 10.0.0.1, a private address"),
        ]
        for (text, phrase) in cases {
            let address = IPAddress(text)
            XCTAssertNotNil(address, text)
            XCTAssertEqual(address.flatMap(ForbiddenNetworks.phrase(for:)), phrase, text)
        }
        XCTAssertNil(IPAddress("localhost"))
        XCTAssertEqual(IPAddress("::ffff:127.0.0.1")?.description, "::ffff:127.0.0.1")
    }

    func testAllowListByNameAddressAndRange() throws {
        let list = try FetchAllowList(["Media.Internal", "127.0.0.2", "10.1.0.0/16", "[::1]"])
        XCTAssertTrue(list.allows(host: "media.internal", address: IPAddress("10.9.9.9")!), "a name allows what it resolves to")
        XCTAssertTrue(list.allows(host: "MEDIA.INTERNAL.", address: IPAddress("10.9.9.9")!))
        XCTAssertTrue(list.allows(host: "other", address: IPAddress("10.1.200.3")!))
        XCTAssertFalse(list.allows(host: "other", address: IPAddress("10.2.0.1")!))
        XCTAssertTrue(list.allows(host: "other", address: IPAddress("::ffff:127.0.0.2")!), "an allowed IPv4 in its mapped form")
        XCTAssertTrue(list.allows(host: "[::1]", address: IPAddress("::1")!))
        XCTAssertNil(list.refusal(host: "127.0.0.2", address: IPAddress("127.0.0.2")!))
        XCTAssertEqual(list.refusal(host: "127.0.0.2.nip.io", address: IPAddress("127.0.0.1")!),
                       "resolves to 127.0.0.1, a loopback address; allow it with media.fetch.allow_hosts")
        XCTAssertNil(FetchAllowList().refusal(host: "example.com", address: IPAddress("93.184.216.34")!))
        for bad in ["http://internal", "10.0.0.0/33", "host:80", "", "a b"] {
            XCTAssertThrowsError(try FetchAllowList([bad]), bad) { error in
                XCTAssertTrue("\(error)".hasPrefix("media.fetch.allow_hosts entry '\(bad)'"), "\(error)")
            }
        }
    }

    func testDataURIs() throws {
        let bytes = Data([0x89, 0x50, 0x4E, 0x47, 0x00, 0xFF, 0x20])
        var decoded = try DataURI.decode("data:image/png;base64," + bytes.base64EncodedString().replacingOccurrences(of: "=", with: ""), maxBytes: 100)
        XCTAssertEqual(decoded.data, bytes, "padding is optional")
        XCTAssertEqual(decoded.mimeType, "image/png")
        decoded = try DataURI.decode("data:Image/PNG;name=x;BASE64,iVBO\nRwD/IA==", maxBytes: 100)
        XCTAssertEqual(decoded.data, bytes, "whitespace inside base64 is ignored")
        XCTAssertEqual(decoded.mimeType, "image/png")
        decoded = try DataURI.decode("data:,%89PNG%00%ff%20", maxBytes: 100)
        XCTAssertEqual(decoded.data, bytes)
        XCTAssertEqual(decoded.mimeType, "")
        decoded = try DataURI.decode("data:text/plain;charset=utf-8,hi%20there", maxBytes: 100)
        XCTAssertEqual(String(decoding: decoded.data, as: UTF8.self), "hi there")
        XCTAssertEqual(decoded.mimeType, "text/plain")

        for (uri, code) in [("data:image/png;base64", ProviderFailure.Code.invalidArgument), ("data:,%8", .invalidArgument),
                            ("data:,%zz", .invalidArgument), ("data:;base64,@@@@", .invalidArgument),
                            ("data:," + String(repeating: "a", count: 101), .resourceExhausted)] {
            XCTAssertThrowsError(try DataURI.decode(uri, maxBytes: 100), uri) { error in
                XCTAssertEqual((error as? ProviderFailure)?.code, code, "\(uri): \(error)")
            }
        }
    }

    func testResolveFillsMessagesAndToolResults() async throws {
        let png = TestMedia.png(width: 4, height: 3)
        let uri = "data:image/jpeg;base64," + png.base64EncodedString()
        let request = GenerationRequest(messages: [
            ChatMessage(role: .user, parts: [.text("look"), .media(MediaInput(mimeType: "", data: Data(), name: "a", uri: uri))]),
            ChatMessage(role: .user, parts: [.toolResult(toolCallID: "t", content: [.media(MediaInput(mimeType: "", data: Data(), uri: uri))], isError: false)]),
        ])
        let (resolved, report) = try await MediaFetcher().resolve(request)
        XCTAssertEqual(report, ["data uri→image/png \(png.count) B"], "one line per distinct URI, the sniffed type")
        guard case .media(let first) = resolved.messages[0].parts[1],
              case .toolResult(_, let content, _) = resolved.messages[1].parts[0], case .media(let nested) = content[0] else {
            return XCTFail("media parts expected: \(resolved.messages)")
        }
        XCTAssertEqual(first.data, png)
        XCTAssertEqual(first.mimeType, "image/jpeg", "the declared type is kept as declared; the adapter sniffs")
        XCTAssertEqual(nested.data, png)
    }

    func testResolveRefusesLoopbackAndNamesTheField() async throws {
        let request = GenerationRequest(messages: [ChatMessage(role: .user, parts: [
            .media(MediaInput(mimeType: "", data: Data(), uri: "http://127.0.0.1:9/x.png")),
        ])])
        do {
            _ = try await MediaFetcher().resolve(request)
            XCTFail("a loopback fetch must be refused")
        } catch let failure as ProviderFailure {
            XCTAssertEqual(failure.code, .failedPrecondition)
            XCTAssertEqual(failure.message, "messages[0].parts[0].media.uri 'http://127.0.0.1:9/x.png': resolves to 127.0.0.1, "
                + "a loopback address; allow it with media.fetch.allow_hosts")
        }
    }
}
