// Tests of DescriptorIndex over the embedded FileDescriptorSet: the answers server
// reflection gives to grpcurl-like clients.
import PrismProto
import XCTest

final class DescriptorIndexTests: XCTestCase {
    /// The name of a serialized FileDescriptorProto, decoded with the protoc-c code.
    private func fileName(_ bytes: [UInt8]) throws -> String {
        let file = try ProtoMessage(google__protobuf__file_descriptor_proto__init, bytes: bytes)
        return String(protoC: file.pointee.name)
    }

    func testListsServices() throws {
        let index = try DescriptorIndex.embedded()
        for service in [
            "prism.v1.Prism", "grpc.health.v1.Health", "grpc.testing.TestService",
            "grpc.testing.UnimplementedService", "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ] {
            XCTAssertTrue(index.serviceNames.contains(service), "missing \(service)")
        }
        XCTAssertEqual(Set(index.serviceNames).count, index.serviceNames.count)
    }

    func testFindsFileOfSymbols() throws {
        let index = try DescriptorIndex.embedded()
        for symbol in [
            "prism.v1.GenerateRequest", "prism.v1.Prism.Generate", "prism.v1.Prism",
            "prism.v1.Modality", "prism.v1.GenerateRequest.LabelsEntry", "prism.v1.Route.fallbacks",
            ".prism.v1.Batch",
        ] {
            XCTAssertEqual(index.fileName(containingSymbol: symbol), "prism/v1/prism.proto", symbol)
        }
        XCTAssertEqual(index.fileName(containingSymbol: "grpc.health.v1.HealthCheckResponse.ServingStatus"),
                       "grpc/health/v1/health.proto")
        XCTAssertNil(index.fileName(containingSymbol: "prism.v1.NoSuchThing"))
        XCTAssertNil(index.fileDescriptorProtos(containingSymbol: "prism"))
        XCTAssertNil(index.fileDescriptorProtos(fileName: "nope.proto"))

        let answer = try XCTUnwrap(index.fileDescriptorProtos(containingSymbol: "prism.v1.Prism.Generate"))
        XCTAssertEqual(try answer.map(fileName), ["prism/v1/prism.proto"])
    }

    func testReturnsFileFirstThenDependencies() throws {
        let index = try DescriptorIndex.embedded()
        let answer = try XCTUnwrap(index.fileDescriptorProtos(containingSymbol: "grpc.testing.TestService.UnaryCall"))
        XCTAssertEqual(try answer.map(fileName),
                       ["grpc/testing/test.proto", "grpc/testing/empty.proto", "grpc/testing/messages.proto"])
        let byName = try XCTUnwrap(index.fileDescriptorProtos(fileName: "grpc/testing/test.proto"))
        XCTAssertEqual(byName, answer)
    }

    func testFilesKeepProtocBytes() throws {
        // Re-encoding every file must give back exactly what protoc wrote: reflection
        // clients then see the same descriptors as `protoc --descriptor_set_out`.
        let index = try DescriptorIndex.embedded()
        var set: [UInt8] = []
        for name in index.fileNames {
            let bytes = try XCTUnwrap(index.fileDescriptorProtos(fileName: name)?.first)
            set.append(0x0a)  // field 1 (file), length-delimited
            var length = bytes.count
            while length >= 0x80 {
                set.append(UInt8(length & 0x7f) | 0x80)
                length >>= 7
            }
            set.append(UInt8(length))
            set += bytes
        }
        XCTAssertEqual(set, DescriptorIndex.embeddedSerializedSet)
    }

    func testRejectsGarbage() {
        XCTAssertThrowsError(try DescriptorIndex(serializedSet: [0x0a, 0x05, 0x01])) { error in
            XCTAssertEqual(error as? ProtoError, .malformed("google.protobuf.FileDescriptorSet"))
        }
    }
}
