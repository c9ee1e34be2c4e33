// How an HTTPS URL a plugin asks for becomes the origin of the host's own HTTP/2 connections
// (the host the certificate must name, the port, :authority) and the request's :path.
@testable import PrismProviders
import XCTest

final class VendorOriginTests: XCTestCase {
    func testAnHTTPSURLGivesItsHostPortAuthorityAndPath() throws {
        let origin = try XCTUnwrap(VendorOrigin(url: "https://API.openai.com/v1/chat/completions?stream=true#part"))
        XCTAssertEqual(origin.host, "api.openai.com")
        XCTAssertEqual(origin.port, 443)
        XCTAssertEqual(origin.authority, "API.openai.com")
        XCTAssertEqual(origin.key, "api.openai.com:443")
        XCTAssertEqual(origin.path(of: "https://API.openai.com/v1/chat/completions?stream=true#part"), "/v1/chat/completions?stream=true")
    }

    func testPortsAddressesAndEmptyPaths() throws {
        let local = try XCTUnwrap(VendorOrigin(url: "https://127.0.0.1:8443?key=1"))
        XCTAssertEqual([local.host, String(local.port), local.authority], ["127.0.0.1", "8443", "127.0.0.1:8443"])
        XCTAssertEqual(local.path(of: "https://127.0.0.1:8443?key=1"), "/?key=1")
        XCTAssertEqual(local.path(of: "https://127.0.0.1:8443"), "/")
        let six = try XCTUnwrap(VendorOrigin(url: "https://[::1]:9000/v1beta/models"))
        XCTAssertEqual([six.host, String(six.port), six.authority], ["::1", "9000", "[::1]:9000"])
        XCTAssertEqual(six.path(of: "https://[::1]:9000/v1beta/models"), "/v1beta/models")
    }

    func testWhatTheHostsOwnClientLeavesToCurl() {
        for url in ["http://api.openai.com/v1", "https://user:secret@api.openai.com/v1", "https://api.openai.com:99999/",
                    "https://:443/", "https://[::1/", "https:///v1"] {
            XCTAssertNil(VendorOrigin(url: url), url)
        }
    }
}
