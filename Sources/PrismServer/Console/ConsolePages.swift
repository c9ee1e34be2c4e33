// The web console on the gRPC port: `GET /` and `/console/*`, served from the files built into the
// binary (ConsoleAssets, made by tools/gen-console.sh), with entity tags for revalidation and a
// content security policy that lets the page load and call nothing but this server.
import PrismRPC

/// One file of the console, as tools/gen-console.sh writes it into ConsoleAssets.
struct ConsoleAsset: Sendable {
    let path: String
    let contentType: String
    /// A quoted hash of the bytes: it changes exactly when the file does.
    let etag: String
    let text: String
}

enum ConsolePages {
    /// Everything from this origin only: scripts, styles, images, fetch. `blob:` is for what the
    /// page makes itself (attachment previews, an answer's image or audio); inline script and
    /// style, eval, plugins, framing and form posts elsewhere are all refused.
    static let contentSecurityPolicy = [
        "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' blob:",
        "media-src 'self' blob:", "connect-src 'self'", "manifest-src 'self'", "base-uri 'none'",
        "form-action 'self'", "frame-ancestors 'none'",
    ].joined(separator: "; ")

    /// Sent with every console file. `no-cache` makes the browser revalidate each time (a cheap 304
    /// with the ETag), so a new server binary's console is seen at once without versioned URLs.
    static let headers: [(String, String)] = [
        ("cache-control", "no-cache"),
        ("content-security-policy", contentSecurityPolicy),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ]

    static func register(on router: inout Router) {
        for asset in ConsoleAssets.all {
            let page = HTTPPage(contentType: asset.contentType, body: asset.text, headers: headers, etag: asset.etag)
            router.page(asset.path) { page }
        }
    }
}
