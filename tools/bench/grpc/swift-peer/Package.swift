// swift-tools-version:6.1
// The grpc-swift-2 peer of the gRPC benchmark (tools/bench/grpc/run.sh): a server on
// grpc-swift-2 and its NIO HTTP/2 transport, built apart from Prism so that Prism never
// depends on grpc-swift. Build it into a gitignored scratch path (run.sh uses .build-bench/).
import PackageDescription

let package = Package(
    name: "SwiftPeer",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/grpc/grpc-swift-2.git", exact: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", exact: "2.9.2"),
    ],
    targets: [
        .executableTarget(
            name: "swift-peer",
            dependencies: [
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            ],
            path: "Sources/SwiftPeer"
        )
    ]
)
