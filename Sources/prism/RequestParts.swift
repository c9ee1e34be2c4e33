// The prism.v1.Part messages the CLI's requests are made of: a text, or a file read from disk as
// Media (its type is left to the server, which sniffs the bytes), or as text when it is a text file.
import Foundation
import PrismProto

extension ProtoBuilder {
    /// A text part.
    func textPart(_ text: String) -> UnsafeMutablePointer<Prism__V1__Part> {
        let part = message(prism__v1__part__init)
        part.pointee.kind_case = PRISM__V1__PART__KIND_TEXT
        part.pointee.text = string(text)
        return part
    }

    /// Files sent as text parts (when their bytes are UTF-8) rather than as media.
    static let textExtensions: Set<String> = ["txt", "md", "markdown", "csv", "tsv", "json", "xml", "html", "htm", "log", "eml"]

    /// The file at `path` as a media part named after it; a text file as a text part headed by its name.
    func filePart(_ path: String) throws -> UnsafeMutablePointer<Prism__V1__Part> {
        let data = try MediaIO.read(path)
        let name = (path as NSString).lastPathComponent
        if Self.textExtensions.contains((path as NSString).pathExtension.lowercased()), let text = String(data: data, encoding: .utf8) {
            return textPart("[file \(name)]\n\(text)")
        }
        let media = message(prism__v1__media__init)
        media.pointee.data = data.withUnsafeBytes { bytes($0) }
        media.pointee.name = string(name)
        let part = message(prism__v1__part__init)
        part.pointee.kind_case = PRISM__V1__PART__KIND_MEDIA
        part.pointee.media = media
        return part
    }
}
