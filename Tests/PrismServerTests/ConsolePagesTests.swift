// The web console as the router serves it: every file of console/ registered with its type, entity
// tag and the self-only content security policy; every file the page or its modules name is one of
// them; and HTTPPage's if-none-match rule (exact, listed, weak, `*`) that turns a GET into a 304.
import Foundation
@testable import PrismRPC
@testable import PrismServer
import XCTest

final class ConsolePagesTests: XCTestCase {
    private func router() -> Router {
        var router = Router()
        ConsolePages.register(on: &router)
        return router
    }

    func testEveryFileIsServedWithItsTypeTagAndPolicy() throws {
        let router = router()
        XCTAssertFalse(ConsoleAssets.all.isEmpty)
        var tags = Set<String>()
        for asset in ConsoleAssets.all {
            let page = try XCTUnwrap(router.page(asset.path), asset.path)()
            XCTAssertEqual(page.status, 200)
            XCTAssertEqual(page.contentType, asset.contentType)
            XCTAssertEqual(page.body, asset.text)
            let etag = try XCTUnwrap(page.etag)
            XCTAssertTrue(etag.hasPrefix("\"") && etag.hasSuffix("\""), etag)
            tags.insert(etag)
            let headers = Dictionary(page.headers, uniquingKeysWith: { first, _ in first })
            XCTAssertEqual(headers["cache-control"], "no-cache")
            XCTAssertEqual(headers["content-security-policy"], ConsolePages.contentSecurityPolicy)
            XCTAssertEqual(headers["x-content-type-options"], "nosniff")
        }
        XCTAssertEqual(tags.count, ConsoleAssets.all.count, "one tag per file")
        XCTAssertEqual(try XCTUnwrap(router.page("/"))().contentType, "text/html; charset=utf-8")
        for directive in ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"] {
            XCTAssertTrue(ConsolePages.contentSecurityPolicy.contains(directive), directive)
        }
    }

    func testThePageHasItsHooksAndEveryFileItNamesExists() throws {
        let router = router()
        let html = try XCTUnwrap(router.page("/"))().body
        for hook in ["prompt", "send", "answer", "model", "file"] {
            XCTAssertTrue(html.contains("data-testid=\"\(hook)\""), hook)
        }
        // href/src in the page, and `from './x.js'` in the modules: each must be a served file.
        var named = Set<String>()
        let reference = try NSRegularExpression(pattern: #"(?:href|src)="(/console/[^"]+)""#)
        for match in reference.matches(in: html, range: NSRange(html.startIndex..., in: html)) {
            named.insert(String(html[Range(match.range(at: 1), in: html)!]))
        }
        let module = try NSRegularExpression(pattern: #"from '\./([^']+)'"#)
        for asset in ConsoleAssets.all where asset.path.hasSuffix(".js") {
            for match in module.matches(in: asset.text, range: NSRange(asset.text.startIndex..., in: asset.text)) {
                named.insert("/console/" + String(asset.text[Range(match.range(at: 1), in: asset.text)!]))
            }
        }
        XCTAssertTrue(named.contains("/console/app.js") && named.contains("/console/connect.js"), "\(named)")
        for path in named {
            XCTAssertNotNil(router.page(path), "\(path) is named but not served")
        }
        XCTAssertFalse(html.contains("http://") || html.contains("https://"), "nothing from elsewhere")
    }

    func testIfNoneMatch() {
        let page = HTTPPage(body: "x", etag: "\"abc\"")
        XCTAssertTrue(page.isNotModified(ifNoneMatch: "\"abc\""))
        XCTAssertTrue(page.isNotModified(ifNoneMatch: "\"other\", W/\"abc\""))
        XCTAssertTrue(page.isNotModified(ifNoneMatch: " \t\"abc\" "))
        XCTAssertTrue(page.isNotModified(ifNoneMatch: "*"))
        XCTAssertFalse(page.isNotModified(ifNoneMatch: "\"abcd\""))
        XCTAssertFalse(page.isNotModified(ifNoneMatch: "abc"), "a tag is quoted")
        XCTAssertFalse(page.isNotModified(ifNoneMatch: nil))
        XCTAssertFalse(HTTPPage(body: "x").isNotModified(ifNoneMatch: "*"), "no tag, no 304")
    }
}
