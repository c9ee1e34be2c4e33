// DescriptorIndex answers server-reflection questions (which services, which file defines
// a symbol) from the FileDescriptorSet that tools/gen-proto.sh embeds in PrismProtoC.

/// An index over a serialized `google.protobuf.FileDescriptorSet`.
///
/// Server reflection (`grpc.reflection.v1` and `v1alpha`) is built on it: build one at
/// start-up with `DescriptorIndex.embedded()`, then answer `list_services`,
/// `file_by_filename` and `file_containing_symbol` from it. Answers are serialized
/// `FileDescriptorProto`s, the requested file first and then its transitive
/// dependencies, which is the order reflection clients expect. The index holds only Swift
/// values, so it is immutable and safe to share between event loops.
public struct DescriptorIndex: Sendable {
    /// One file of the set: its encoding and the names of the files it imports.
    private struct File: Sendable {
        var bytes: [UInt8]
        var dependencies: [String]
    }

    /// The fully-qualified names of every service in the set, in file order,
    /// e.g. `prism.v1.Prism`, `grpc.health.v1.Health`.
    public let serviceNames: [String]

    /// The names of every file in the set, e.g. `prism/v1/prism.proto`, dependencies first.
    public let fileNames: [String]

    private let files: [String: File]
    /// Fully-qualified symbol (message, nested message, enum, field, service, method) to file name.
    private let symbols: [String: String]

    /// The FileDescriptorSet of Prism's protos, as tools/gen-proto.sh embedded it.
    public static var embeddedSerializedSet: [UInt8] {
        Array(UnsafeBufferPointer(start: prism_descriptor_set_bytes(), count: Int(prism_descriptor_set_len)))
    }

    /// The index of Prism's own protos: prism.v1, grpc.health.v1, grpc.reflection and
    /// grpc.testing. Throws only if the embedded set is corrupt, which the tests rule out.
    public static func embedded() throws -> DescriptorIndex {
        try DescriptorIndex(serializedSet: embeddedSerializedSet)
    }

    /// Indexes a serialized FileDescriptorSet, e.g. from `protoc --descriptor_set_out`.
    /// Throws `ProtoError.malformed` if the bytes are not one.
    public init(serializedSet: [UInt8]) throws {
        let set = try ProtoMessage(google__protobuf__file_descriptor_set__init, bytes: serializedSet)
        var services: [String] = []
        var names: [String] = []
        var files: [String: File] = [:]
        var symbols: [String: String] = [:]

        // The loop reads C memory owned by `set`; keep it alive until the walk is done.
        withExtendedLifetime(set) {
            for file in elements(set.pointee.file, set.pointee.n_file) {
                let name = String(protoC: file.pointee.name)
                guard files[name] == nil else {
                    continue
                }
                // Each file is re-encoded by protobuf-c; it keeps every field, unknown ones
                // included, and the tests check the result equals protoc's own bytes.
                let dependencies = elements(file.pointee.dependency, file.pointee.n_dependency).map { String(cString: $0) }
                files[name] = File(bytes: protoPack(file), dependencies: dependencies)
                names.append(name)

                let package = String(protoC: file.pointee.package)
                for symbol in Self.symbols(of: file, package: package) where symbols[symbol] == nil {
                    symbols[symbol] = name
                }
                for service in elements(file.pointee.service, file.pointee.n_service) {
                    services.append(Self.qualified(package, String(protoC: service.pointee.name)))
                }
            }
        }
        self.serviceNames = services
        self.fileNames = names
        self.files = files
        self.symbols = symbols
    }

    /// The name of the file defining `symbol`: a fully-qualified message (nested ones too),
    /// enum, field, service or method (`prism.v1.Prism.Generate`). A leading dot is allowed.
    public func fileName(containingSymbol symbol: String) -> String? {
        symbols[symbol.hasPrefix(".") ? String(symbol.dropFirst()) : symbol]
    }

    /// The file named `fileName` and its transitive dependencies, each a serialized
    /// FileDescriptorProto, the requested file first; nil if there is no such file.
    public func fileDescriptorProtos(fileName: String) -> [[UInt8]]? {
        guard files[fileName] != nil else {
            return nil
        }
        // Breadth-first from the requested file, each file once.
        var order = [fileName]
        var seen: Set<String> = [fileName]
        var next = 0
        while next < order.count {
            for dependency in files[order[next]]?.dependencies ?? [] where !seen.contains(dependency) {
                seen.insert(dependency)
                order.append(dependency)
            }
            next += 1
        }
        // A dependency missing from the set is left out rather than failing the answer.
        return order.compactMap { files[$0]?.bytes }
    }

    /// The file defining `symbol` (see `fileName(containingSymbol:)`) and its transitive
    /// dependencies, the defining file first; nil if no file defines it.
    public func fileDescriptorProtos(containingSymbol symbol: String) -> [[UInt8]]? {
        fileName(containingSymbol: symbol).flatMap { fileDescriptorProtos(fileName: $0) }
    }

    // MARK: - Walking the descriptors

    private static func qualified(_ scope: String, _ name: String) -> String {
        scope.isEmpty ? name : "\(scope).\(name)"
    }

    /// Every symbol a file defines, fully qualified.
    private static func symbols(
        of file: UnsafeMutablePointer<Google__Protobuf__FileDescriptorProto>,
        package: String
    ) -> [String] {
        var result: [String] = []
        for message in elements(file.pointee.message_type, file.pointee.n_message_type) {
            result += symbols(of: message, scope: package)
        }
        for enumType in elements(file.pointee.enum_type, file.pointee.n_enum_type) {
            result.append(qualified(package, String(protoC: enumType.pointee.name)))
        }
        for service in elements(file.pointee.service, file.pointee.n_service) {
            let serviceName = qualified(package, String(protoC: service.pointee.name))
            result.append(serviceName)
            for method in elements(service.pointee.method, service.pointee.n_method) {
                result.append(qualified(serviceName, String(protoC: method.pointee.name)))
            }
        }
        return result
    }

    /// A message, its fields, and its nested messages and enums, recursively.
    private static func symbols(
        of message: UnsafeMutablePointer<Google__Protobuf__DescriptorProto>,
        scope: String
    ) -> [String] {
        let name = qualified(scope, String(protoC: message.pointee.name))
        var result = [name]
        for field in elements(message.pointee.field, message.pointee.n_field) {
            result.append(qualified(name, String(protoC: field.pointee.name)))
        }
        for nested in elements(message.pointee.nested_type, message.pointee.n_nested_type) {
            result += symbols(of: nested, scope: name)
        }
        for enumType in elements(message.pointee.enum_type, message.pointee.n_enum_type) {
            result.append(qualified(name, String(protoC: enumType.pointee.name)))
        }
        return result
    }
}

/// The non-NULL elements of a protobuf-c repeated pointer field (`n_x`, `x`).
func elements<Element>(_ array: UnsafeMutablePointer<UnsafeMutablePointer<Element>?>?, _ count: Int) -> [UnsafeMutablePointer<Element>] {
    UnsafeBufferPointer(start: array, count: array == nil ? 0 : count).compactMap { $0 }
}
