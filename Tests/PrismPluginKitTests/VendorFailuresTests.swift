// The one table every vendor plugin maps HTTP error statuses and broken transfers with: the code,
// whether the host retries, and retry hints that cannot trap however a vendor spells them.
import XCTest

@testable import PrismPluginKit

final class VendorFailuresTests: XCTestCase {
    private func failure(_ status: Int, retryAfter: UInt64 = 0) -> CallFailure {
        VendorFailures.failure(vendor: "acme", status: status, label: "HTTP \(status) x", message: "vendor says no",
                               retryAfterMilliseconds: retryAfter)
    }

    func testTheTable() {
        let table: [(Int, CallStatus, Bool)] = [
            (400, .invalidArgument, false), (401, .unauthenticated, false), (402, .failedPrecondition, false),
            (403, .unauthenticated, false), (404, .failedPrecondition, false), (408, .deadlineExceeded, true),
            (409, .failedPrecondition, false), (413, .resourceExhausted, false), (418, .invalidArgument, false),
            (422, .invalidArgument, false), (429, .rateLimited, true), (500, .unavailable, true), (503, .unavailable, true),
            (504, .deadlineExceeded, true), (529, .unavailable, true), (302, .unknown, false), (0, .unknown, false),
        ]
        for (status, code, retryable) in table {
            let f = failure(status)
            XCTAssertEqual(f.status, code, "HTTP \(status)")
            XCTAssertEqual(f.retryable, retryable, "HTTP \(status)")
            XCTAssertEqual(f.httpStatus, UInt32(status), "HTTP \(status)")
            XCTAssertTrue(f.message.hasPrefix("acme "), f.message)
        }
        // The key's refusal drops the vendor's message (it can echo the key); others keep it.
        XCTAssertFalse(failure(401).message.contains("vendor says no"))
        XCTAssertTrue(failure(400).message.contains("(HTTP 400 x): vendor says no"), failure(400).message)
        // The retry hint travels with what is retried, not with what is final.
        XCTAssertEqual(failure(429, retryAfter: 1500).retryAfterMilliseconds, 1500)
        XCTAssertEqual(failure(503, retryAfter: 1500).retryAfterMilliseconds, 1500)
        XCTAssertEqual(failure(400, retryAfter: 1500).retryAfterMilliseconds, 0)
    }

    func testTransfers() {
        XCTAssertEqual(VendorFailures.failure(for: .cancelled, vendor: "acme", status: 0).status, .cancelled)
        XCTAssertEqual(VendorFailures.failure(for: .stopped, vendor: "acme", status: 200).status, .cancelled)
        XCTAssertEqual(VendorFailures.failure(for: .timedOut, vendor: "acme", status: 0).status, .deadlineExceeded)
        let unreachable = VendorFailures.failure(for: .transport("refused"), vendor: "acme", status: 0)
        XCTAssertEqual(unreachable.status, .unavailable)
        XCTAssertTrue(unreachable.retryable)
        XCTAssertEqual(unreachable.message, "cannot reach acme: refused")
        XCTAssertEqual(VendorFailures.failure(for: .transport("reset"), vendor: "acme", status: 200).message, "acme's answer broke off: reset")
    }

    func testRetryHintsOfAnySpelling() {
        XCTAssertEqual(VendorFailures.retryAfterMilliseconds(["retry-after": "2"]), 2000)
        XCTAssertEqual(VendorFailures.retryAfterMilliseconds(["retry-after-ms": "250", "retry-after": "9"]), 250)
        XCTAssertEqual(VendorFailures.retryAfterMilliseconds(["retry-after": "0.5"]), 500)
        // What once trapped the conversion to UInt64: infinite, negative, NaN, huge.
        for hostile in ["inf", "-1", "nan", "1e400", "-inf"] {
            XCTAssertEqual(VendorFailures.retryAfterMilliseconds(["retry-after": hostile]), 0, hostile)
            XCTAssertEqual(VendorFailures.retryAfterMilliseconds(["retry-after-ms": hostile]), 0, hostile)
        }
        XCTAssertEqual(VendorFailures.retryAfterMilliseconds(["retry-after": "1e12"]), UInt64(VendorFailures.maxRetryAfterSeconds * 1000))
        XCTAssertEqual(VendorFailures.retryAfterMilliseconds(["retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"]), 0)
        XCTAssertEqual(VendorFailures.milliseconds(seconds: nil), 0)
    }
}
