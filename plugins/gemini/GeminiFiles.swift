// The Files API, for media that would push a request over the inline limit: a resumable upload
// (start → the x-goog-upload-url → "upload, finalize"), then GET files/{id} until the file is
// ACTIVE, with the call's deadline, a processing timeout and cancellation honoured throughout.
import Foundation
import PrismPluginKit

struct GeminiFiles {
    let settings: GeminiSettings
    let apiKey: String
    let http: BlockingHTTP
    let call: ProviderCall
    let deadline: Date?

    /// A file's JSON (the Files API's own answers) is a few hundred bytes.
    static let maxAnswerBytes = 64 * 1024
    /// The wait before the first poll; it doubles up to the configured poll interval.
    static let firstPollInterval: TimeInterval = 0.1
    /// How often a wait between polls looks at cancellation.
    static let cancelCheckInterval: TimeInterval = 0.05

    /// Uploads the largest media first until what stays inline (as base64, with the text) is
    /// within the inline limit; returns the uploaded ones by position. Nothing is uploaded when
    /// the request already fits.
    func uploadOversized(_ request: ProviderRequest) throws -> [MediaPosition: UploadedFile] {
        let media = GeminiRequest.media(of: request)
        var inline = Self.inlineSize(of: request)
        var uploaded: [MediaPosition: UploadedFile] = [:]
        for medium in media.sorted(by: { $0.data.count > $1.data.count }) where inline > settings.inlineLimitBytes {
            uploaded[medium.position] = try upload(medium.data, mimeType: medium.mimeType, name: medium.name)
            inline -= Self.base64Size(medium.data.count)
        }
        return uploaded
    }

    static func base64Size(_ bytes: Int) -> Int { (bytes + 2) / 3 * 4 }

    /// What the request weighs inline, as Google counts it: its text and its media as base64.
    static func inlineSize(of request: ProviderRequest) -> Int {
        let text = request.messages.flatMap(\.parts).reduce(request.system.utf8.count) { sum, part in
            if case .text(let t) = part { return sum + t.utf8.count } else { return sum }
        }
        return GeminiRequest.media(of: request).reduce(text) { $0 + base64Size($1.data.count) }
    }

    /// Uploads one medium and waits until Gemini can use it.
    func upload(_ data: Data, mimeType: String, name: String) throws -> UploadedFile {
        var start = HTTPRequest(url: settings.uploadURL)
        start.headers = [("x-goog-api-key", apiKey), ("X-Goog-Upload-Protocol", "resumable"), ("X-Goog-Upload-Command", "start"),
                         ("X-Goog-Upload-Header-Content-Length", "\(data.count)"), ("X-Goog-Upload-Header-Content-Type", mimeType),
                         ("content-type", "application/json")]
        start.body = try JSONSerialization.data(withJSONObject: ["file": ["display_name": name.isEmpty ? "prism-upload" : name]])
        let (startHead, _) = try exchange(start, what: "starting the upload")
        guard let uploadURL = startHead.headers["x-goog-upload-url"], !uploadURL.isEmpty else {
            throw CallFailure(.unavailable, "gemini's upload start answered without an x-goog-upload-url", retryable: true)
        }

        var send = HTTPRequest(url: uploadURL)
        send.headers = [("x-goog-api-key", apiKey), ("X-Goog-Upload-Offset", "0"), ("X-Goog-Upload-Command", "upload, finalize"),
                        ("content-type", mimeType)]
        send.body = data
        var file = try Self.file(exchange(send, what: "uploading \(data.count) bytes").1)
        call.log(.info, "gemini: uploaded '\(name)' (\(mimeType), \(data.count) bytes) as \(file.name), \(file.state)")

        // Poll until ACTIVE, within the call's deadline and the processing timeout. Small files are
        // ready at once and video takes a while: the first poll comes soon, then ever less often.
        let giveUp = min(deadline ?? .distantFuture, Date().addingTimeInterval(settings.fileProcessingTimeout))
        var interval = min(Self.firstPollInterval, settings.filePollInterval)
        var polls = 0
        while file.state != "ACTIVE" {
            guard file.state != "FAILED" else { throw CallFailure(.invalidArgument, "gemini could not process the uploaded '\(name)' (\(mimeType)): state FAILED") }
            try wait(interval, until: giveUp, file: file.name)
            interval = min(interval * 2, settings.filePollInterval)
            var poll = HTTPRequest(url: settings.baseURL + "/" + file.name)
            poll.method = "GET"
            poll.headers = [("x-goog-api-key", apiKey)]
            file = try Self.file(exchange(poll, what: "polling \(file.name)").1)
            polls += 1
        }
        call.log(.info, "gemini: \(file.name) is ACTIVE after \(polls) polls")
        return UploadedFile(uri: file.uri, mimeType: file.mimeType.isEmpty ? mimeType : file.mimeType)
    }

    /// Sleeps `interval` in short slices, failing on cancellation or once `until` passes.
    private func wait(_ interval: TimeInterval, until giveUp: Date, file: String) throws {
        let end = Date().addingTimeInterval(interval)
        while Date() < end {
            if call.isCancelled { throw CallFailure(.cancelled, "cancelled") }
            if Date() >= giveUp {
                if let deadline, deadline <= Date() { throw CallFailure(.deadlineExceeded, "the deadline passed while gemini processed \(file)") }
                throw CallFailure(.unavailable, "gemini did not finish processing \(file) within \(Int(settings.fileProcessingTimeout)) s")
            }
            Thread.sleep(forTimeInterval: min(Self.cancelCheckInterval, end.timeIntervalSinceNow))
        }
    }

    /// One request of the upload; a non-200 is Gemini's error body as a call failure.
    private func exchange(_ request: HTTPRequest, what: String) throws -> (HTTPResponseHead, Data) {
        var request = request
        request.deadline = deadline
        do {
            let (head, body) = try http.fetch(request, maxBodyBytes: Self.maxAnswerBytes)
            guard head.status == 200 else {
                var failure = GeminiErrors.failure(status: head.status, body: body)
                failure.message = "\(what): \(failure.message)"
                throw failure
            }
            return (head, body)
        } catch let error as HTTPTransferError {
            throw VendorFailures.failure(for: error, vendor: "the Files API (\(what))", status: 0)
        }
    }

    private struct File {
        var name: String
        var uri: String
        var mimeType: String
        var state: String
    }

    /// The File of an upload's answer ({"file":{…}}) or of a GET (the File itself).
    private static func file(_ body: Data) throws -> File {
        let object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
        guard let f = object?["file"] as? [String: Any] ?? object, let name = f["name"] as? String, let uri = f["uri"] as? String else {
            throw CallFailure(.unavailable, "gemini's Files API answered without a file name and uri", retryable: true)
        }
        // A file without a state is usable at once (older answers have none).
        return File(name: name, uri: uri, mimeType: f["mimeType"] as? String ?? "", state: f["state"] as? String ?? "ACTIVE")
    }
}
