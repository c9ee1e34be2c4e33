// MultipartForm against the grammar of RFC 7578: boundary lines, CRLFs, the closing delimiter,
// repeated fields in order, and file parts carrying their name, type and exact bytes.
import Foundation
import PrismPluginKit
import XCTest

final class MultipartFormTests: XCTestCase {
    func testFieldsAndFileAreFramedByTheBoundary() throws {
        var form = MultipartForm()
        let audio = Data([0x52, 0x49, 0x46, 0x46, 0x00, 0x0D, 0x0A, 0xFF])
        form.addFile("file", filename: "clip.wav", contentType: "audio/wav", data: audio)
        form.add("timestamp_granularities[]", "segment")
        form.add("timestamp_granularities[]", "word")
        let (body, contentType) = form.encoded()

        XCTAssertTrue(contentType.hasPrefix("multipart/form-data; boundary="), contentType)
        let boundary = String(contentType.dropFirst("multipart/form-data; boundary=".count))
        var expected = Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"clip.wav\"\r\nContent-Type: audio/wav\r\n\r\n".utf8)
        expected += audio
        expected += Data("\r\n--\(boundary)\r\nContent-Disposition: form-data; name=\"timestamp_granularities[]\"\r\n\r\nsegment\r\n".utf8)
        expected += Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"timestamp_granularities[]\"\r\n\r\nword\r\n".utf8)
        expected += Data("--\(boundary)--\r\n".utf8)
        XCTAssertEqual(body, expected)
    }

    func testQuotesInNamesAreEscapedAndBoundariesDiffer() {
        var form = MultipartForm()
        form.addFile("file", filename: "a\"b\r\n.wav", contentType: "audio/wav", data: Data())
        let first = form.encoded()
        XCTAssertNotNil(String(decoding: first.body, as: UTF8.self).range(of: "filename=\"a%22b%0D%0A.wav\""))
        XCTAssertNotEqual(first.contentType, form.encoded().contentType, "a fresh random boundary per body")
    }
}

extension MultipartFormTests {
    /// A file's content type (a client's declared MIME type, for transcription) cannot add header
    /// lines to its part: line breaks are dropped. Found by the multipart fuzz target.
    func testContentTypeCannotInjectHeaders() {
        var form = MultipartForm()
        form.addFile("file", filename: "a.wav", contentType: "audio/wav\r\nX-Injected: 1\r\n", data: Data([1]))
        let body = String(decoding: form.encoded().body, as: UTF8.self)
        XCTAssertTrue(body.contains("Content-Type: audio/wavX-Injected: 1\r\n\r\n\u{1}"), body)
        XCTAssertFalse(body.contains("\r\nX-Injected"), body)
    }
}
