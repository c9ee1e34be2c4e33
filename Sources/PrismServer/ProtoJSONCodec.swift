// Connect's JSON codec for every method the router serves: each method's input and output types
// from the embedded descriptors, converted by PrismProto's generic proto3 JSON mapping.
import NIOCore
import PrismProto
import PrismRPC

struct ProtoJSONCodec: JSONCodec {
    let json: ProtoJSON

    init(schema: ProtoSchema) {
        json = ProtoJSON(schema: schema)
    }

    func request(fromJSON body: ByteBuffer, path: String) throws -> ByteBuffer {
        guard let types = json.schema.methods[path] else { throw RPCError(.unimplemented, "no message types known for \(path)") }
        do {
            return ByteBuffer(bytes: try json.binary(fromJSON: Array(body.readableBytesView), type: types.input))
        } catch let error as ProtoJSONError {
            throw RPCError(.invalidArgument, "\(types.input) JSON: \(error)")
        }
    }

    func response(toJSON message: ByteBuffer, path: String) throws -> ByteBuffer {
        guard let types = json.schema.methods[path] else { throw RPCError(.internal, "no message types known for \(path)") }
        do {
            return ByteBuffer(string: try json.json(fromBinary: Array(message.readableBytesView), type: types.output))
        } catch let error as ProtoJSONError {
            throw RPCError(.internal, "the answer could not be written as JSON: \(error)")
        }
    }
}
