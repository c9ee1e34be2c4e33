// Fuzz targets for the vendor plugins' shared codecs in PrismPluginKit: the server-sent events
// parser (every streamed vendor answer) and the multipart/form-data writer (file uploads).
import Foundation
import PrismPluginKit

enum PluginKitFuzzTargets {
    /// Option byte (chunking), then an event stream. Fed in chunks it must give the same events
    /// as fed whole.
    static let sse = FuzzTarget(name: "sse", summary: "server-sent events parser; chunked must equal whole") { raw in
        var input = FuzzInput(raw)
        let seed = input.byte()
        var whole = ServerSentEventParser()
        let expected = whole.feedBytes(Data(input.bytes))
        var chunked = ServerSentEventParser()
        var events: [ServerSentEventBytes] = []
        for chunk in input.chunks(seed: seed) { events += chunked.feedBytes(Data(chunk)) }
        guard events == expected else {
            fuzzFailure("SSE fed in chunks gave \(events.count) events, fed whole \(expected.count)")
        }
    }

    /// Option byte (which parts are files), then NUL-separated strings: per part a name and a
    /// value, or a name, filename, content type and data. The body must parse back into them.
    static let multipart = FuzzTarget(name: "multipart", summary: "multipart/form-data writer; its body parses back into its parts") { raw in
        var input = FuzzInput(raw)
        let kinds = input.byte()
        var fields = input.bytes.split(separator: 0, omittingEmptySubsequences: false).map { Array($0) }
        var form = MultipartForm()
        var expected: [(headers: [String], data: [UInt8])] = []
        var index = 0
        func next() -> [UInt8] { fields.isEmpty ? [] : fields.removeFirst() }
        while !fields.isEmpty && index < 8 {
            let name = String(decoding: next(), as: UTF8.self)
            if kinds >> index & 1 == 1 {
                let filename = String(decoding: next(), as: UTF8.self), contentType = String(decoding: next(), as: UTF8.self)
                let data = next()
                form.addFile(name, filename: filename, contentType: contentType, data: Data(data))
                let headerType = String(String.UnicodeScalarView(contentType.unicodeScalars.filter { $0 != "\r" && $0 != "\n" }))
                expected.append(([disposition(name, filename: filename), "Content-Type: \(headerType)"], data))
            } else {
                let value = String(decoding: next(), as: UTF8.self)
                form.add(name, value)
                expected.append(([disposition(name, filename: nil)], Array(value.utf8)))
            }
            index += 1
        }
        let (body, contentType) = form.encoded()
        guard let parts = parse(Array(body), contentType: contentType) else {
            fuzzFailure("multipart body does not parse: \(contentType)")
        }
        guard parts.count == expected.count else {
            fuzzFailure("multipart body holds \(parts.count) parts, \(expected.count) were added")
        }
        for (part, want) in zip(parts, expected) where part.headers != want.headers || part.data != want.data {
            fuzzFailure("multipart part came back as \(part.headers), \(part.data.count) bytes; added \(want.headers), \(want.data.count) bytes")
        }
    }

    /// The Content-Disposition line a part's name and filename should give (RFC 7578's escapes).
    static func disposition(_ name: String, filename: String?) -> String {
        func quoted(_ text: String) -> String {
            text.replacingOccurrences(of: "\"", with: "%22").replacingOccurrences(of: "\r", with: "%0D")
                .replacingOccurrences(of: "\n", with: "%0A")
        }
        var line = "Content-Disposition: form-data; name=\"\(quoted(name))\""
        if let filename { line += "; filename=\"\(quoted(filename))\"" }
        return line
    }

    /// A strict multipart/form-data reader: parts between `--boundary` lines, headers up to the
    /// first empty line. Nil when the body is not well formed.
    static func parse(_ body: [UInt8], contentType: String) -> [(headers: [String], data: [UInt8])]? {
        guard let range = contentType.range(of: "boundary=") else { return nil }
        let delimiter = Array("--\(contentType[range.upperBound...])".utf8)
        let crlf: [UInt8] = [13, 10]
        if body.elementsEqual(delimiter + Array("--\r\n".utf8)) { return [] }
        guard body.starts(with: delimiter + crlf) else { return nil }
        var parts: [(headers: [String], data: [UInt8])] = []
        var rest = body[(delimiter.count + 2)...]
        while true {
            // The part runs to the next CRLF + delimiter.
            guard let end = firstRange(of: crlf + delimiter, in: rest) else { return nil }
            let part = rest[rest.startIndex..<end]
            guard let blank = firstRange(of: crlf + crlf, in: part) else { return nil }
            let headerText = String(decoding: part[part.startIndex..<blank], as: UTF8.self)
            let headers = headerText.components(separatedBy: "\r\n")
            parts.append((headers, Array(part[(blank + 4)...])))
            rest = rest[(end + 2 + delimiter.count)...]
            if rest.elementsEqual(Array("--\r\n".utf8)) { return parts }
            guard rest.starts(with: crlf) else { return nil }
            rest = rest.dropFirst(2)
        }
    }

    static func firstRange(of needle: [UInt8], in haystack: ArraySlice<UInt8>) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        var i = haystack.startIndex
        while i + needle.count <= haystack.endIndex {
            if haystack[i] == needle[0] && haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }
}
