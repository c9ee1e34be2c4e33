// Connect's JSON codec for every method the router serves: each method's input and output types
// from ProtoMethods, converted by PrismProto's ProtoJSON (proto3's canonical JSON mapping).
import NIOCore
import PrismProto
import PrismRPC

struct ProtoJSONCodec: JSONCodec {
    let methods: ProtoMethods

    func request(fromJSON body: ByteBuffer, path: String) throws -> ByteBuffer {
        guard let method = methods.method(path: path) else { throw RPCError(.unimplemented, "no message types known for \(path)") }
        do {
            return ByteBuffer(bytes: try ProtoJSON.decode(method.input, json: body))
        } catch let error as ProtoJSONError {
            throw RPCError(.invalidArgument, "\(protoTypeName(method.input)) JSON: \(error)")
        }
    }

    func response(toJSON message: ByteBuffer, path: String) throws -> ByteBuffer {
        guard let method = methods.method(path: path) else { throw RPCError(.internal, "no message types known for \(path)") }
        return ByteBuffer(string: try ProtoJSON.encode(method.output, binary: message))
    }
}
