// The prism.v1.Part messages the CLI's requests are made of: a text, or a file read from disk as
// Media (its type is left to the server, which sniffs the bytes).
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

    /// The file at `path` as a media part named after it.
    func filePart(_ path: String) throws -> UnsafeMutablePointer<Prism__V1__Part> {
        let data = try MediaIO.read(path)
        let media = message(prism__v1__media__init)
        media.pointee.data = data.withUnsafeBytes { bytes($0) }
        media.pointee.name = string((path as NSString).lastPathComponent)
        let part = message(prism__v1__part__init)
        part.pointee.kind_case = PRISM__V1__PART__KIND_MEDIA
        part.pointee.media = media
        return part
    }
}
