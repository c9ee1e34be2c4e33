// Behaviour of sniffing and header-level inspection: declared types compared with the bytes,
// aliases accepted, and inspection that describes hostile files without decoding them.
import PrismMedia
import XCTest

final class MediaInspectorTests: XCTestCase {
    func testDeclaredTypesAndAliases() {
        let png = pngHeaderOnly(width: 10, height: 10)
        XCTAssertFalse(MediaSniffer.verdict(png, declaredMime: "image/png").mismatch)
        XCTAssertFalse(MediaSniffer.verdict(png, declaredMime: "image/x-png").mismatch, "an alias is not a mismatch")
        XCTAssertTrue(MediaSniffer.verdict(png, declaredMime: "image/jpeg").mismatch)
        XCTAssertTrue(MediaSniffer.verdict(png, declaredMime: "application/x-whatever").mismatch)
        XCTAssertFalse(MediaSniffer.verdict(png, declaredMime: nil).mismatch)
        XCTAssertEqual(MediaFormat(mimeType: "audio/x-wav; charset=binary"), .wav)
        XCTAssertEqual(MediaFormat(mimeType: "IMAGE/JPG"), .jpeg)
        XCTAssertNil(MediaFormat(mimeType: "text/plain"))
        // Container families: an .m4a declared as video/mp4 is the same bytes.
        let m4a = Data([0, 0, 0, 0x18] + Array("ftypM4A ".utf8) + [0, 0, 0, 0] + Array("isomM4A ".utf8))
        XCTAssertEqual(MediaSniffer.sniff(m4a), .m4a)
        XCTAssertFalse(MediaSniffer.verdict(m4a, declaredMime: "video/mp4").mismatch)
        XCTAssertEqual(MediaSniffer.sniff(Data("%PDF-1.4\n".utf8)), .pdf)
        XCTAssertEqual(MediaSniffer.sniff(Data()), .unknown)
    }

    func testInspectionReadsHeadersOnly() throws {
        let f = try Fixtures()
        _ = try f.photoJPEG("p.jpg", width: 400, height: 200)
        let rotated = MediaInspector.inspect(jpegWithEXIF(try f.data("p.jpg"), orientation: 6), declaredMime: "image/png")
        XCTAssertEqual(rotated.verdict.format, .jpeg)
        XCTAssertTrue(rotated.verdict.mismatch)
        XCTAssertEqual(rotated.image?.width, 200, "as displayed, after EXIF orientation 6")
        XCTAssertEqual(rotated.image?.orientation, 6)

        // A bomb is described (it is only a header), not decoded, with the limit fitting would hit.
        let bomb = MediaInspector.inspect(pngHeaderOnly(width: 50_000, height: 50_000))
        XCTAssertEqual(bomb.image?.width, 50_000)
        XCTAssertEqual(bomb.problem?.hasPrefix("imagePixels limit exceeded"), true, bomb.problem ?? "")
        XCTAssertNil(rotated.problem)

        let pdf = MediaInspector.inspect(makePDF(pages: ["a", "b"]))
        XCTAssertEqual(pdf.document?.pages, 2)
        XCTAssertEqual(MediaInspector.inspect(makePDF(pages: ["a"], encrypt: true)).problem, "\(MediaError.encrypted)")

        try f.ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:duration=1", "-f", "lavfi", "-i", "sine=duration=1",
                     "-c:v", "libx264", "-c:a", "aac", "-shortest", f.path("v.mp4"))
        let video = MediaInspector.inspect(try f.data("v.mp4"))
        XCTAssertEqual(video.video?.width, 160)
        XCTAssertEqual(video.audio?.codec, "aac")

        XCTAssertNotNil(MediaInspector.inspect(Data("plain text".utf8)).problem)
    }
}
