// Re-exports the protoc-c generated structs and libprotobuf-c, so that `import PrismProto`
// is all a target needs to read and build Prism's messages.
@_exported import CProtobufC
@_exported import PrismProtoC
