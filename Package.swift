// swift-tools-version:6.1
// Prism: a multi-modal AI gateway. The package builds the RPC runtime, the media core,
// the services, the daemon (`prism-server`) and the CLI (`prism`); see README.md.
import PackageDescription

let package = Package(
    name: "Prism",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "prism-server", targets: ["prism-server"]),
        .executable(name: "prism", targets: ["prism"]),
        .library(name: "PrismRPC", targets: ["PrismRPC"]),
        .library(name: "PrismMedia", targets: ["PrismMedia"]),
        // Provider plugins, each its own shared object; the host loads only libprism-plugin-*.so.
        .library(name: "prism-plugin-example", type: .dynamic, targets: ["PrismPluginExample"]),
        // Local engines (issue 5): OCR, speech-to-text, text-to-speech, no network or key.
        .library(name: "prism-plugin-tesseract", type: .dynamic, targets: ["PrismPluginTesseract"]),
        .library(name: "prism-plugin-pocketsphinx", type: .dynamic, targets: ["PrismPluginPocketSphinx"]),
        .library(name: "prism-plugin-espeak", type: .dynamic, targets: ["PrismPluginEspeak"]),
        // Vendor providers (issue 6): Swift plugins on PrismPluginKit, HTTP through libcurl.
        .library(name: "prism-plugin-openai", type: .dynamic, targets: ["PrismPluginOpenAI"]),
        .library(name: "prism-plugin-anthropic", type: .dynamic, targets: ["PrismPluginAnthropic"]),
        .library(name: "prism-plugin-gemini", type: .dynamic, targets: ["PrismPluginGemini"]),
        // Plugins for the host's tests; their libprismtest-plugin-*.so names are never loaded by default.
        .library(name: "prismtest-plugin-testkit", type: .dynamic, targets: ["PrismPluginTestkit"]),
        .library(name: "prismtest-plugin-badabi", type: .dynamic, targets: ["PrismPluginBadABI"]),
        .library(name: "prismtest-plugin-relay", type: .dynamic, targets: ["PrismPluginRelay"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        // /metrics: Prometheus's collector registry and text exposition (pulls in swift-metrics' CoreMetrics and swift-atomics).
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // Traces (README "Traces and logs"): the tracing API in the provider layer, OTLP/HTTP export
        // in the server. Only the OTLPHTTP trait, so that grpc-swift is not built for an exporter.
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // System libraries, found with pkg-config.
        .systemLibrary(name: "CNGHTTP2", pkgConfig: "libnghttp2", providers: [.apt(["libnghttp2-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CProtobufC", pkgConfig: "libprotobuf-c", providers: [.apt(["libprotobuf-c-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),

        // protoc-c output and the serialized FileDescriptorSet; made by tools/gen-proto.sh, never by hand.
        .target(
            name: "PrismProtoC",
            dependencies: ["CProtobufC"],
            exclude: ["generated/descriptor_set.pb"],
            publicHeadersPath: "generated",
            cSettings: [.headerSearchPath("generated")]
        ),
        // Swift face of the generated messages: decode, encode, ownership, proto3 JSON (ProtoJSON).
        .target(
            name: "PrismProto",
            dependencies: ["PrismProtoC", "CProtobufC", "PrismJSON", .product(name: "NIOCore", package: "swift-nio")]
        ),

        // The one bounded hand-off between threads (blocking or non-blocking producers, one async consumer).
        // Cross-module optimization: its generic methods specialize into the callers' modules, where
        // every event of every stream passes (unspecialized, each call looked up generic metadata).
        // Release builds skip the runtime exclusivity checks of its code: its state is touched only
        // under its lock and its callbacks run outside any access, and the checks (a runtime call per
        // property access, also in the inlined copies) were ~3% of a relayed delta's instructions.
        // Debug builds, where every test runs, keep them.
        .target(name: "PrismHandOff", swiftSettings: [.swiftLanguageMode(.v6),
                                                      .unsafeFlags(["-cross-module-optimization", "-enforce-exclusivity=unchecked"], .when(configuration: .release))]),

        // Transport and gRPC semantics: sockets, TLS, HTTP/2, framing, deadlines, a client.
        .target(
            name: "PrismRPC",
            dependencies: [
                "CNGHTTP2", "COpenSSL", "CZlib", "PrismHandOff",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                // HTTP/1.1 on the gRPC port (gRPC-Web, health, metrics): NIO's request parser.
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),

        // --- media core (issue: media core) ---
        // libvips, poppler-glib and FFmpeg through pkg-config; FFmpeg's headers all live in one folder,
        // so one module covers libavformat/libavcodec/libavutil/libswresample/libswscale (its modulemap links each).
        .systemLibrary(name: "CVips", pkgConfig: "vips", providers: [.apt(["libvips-dev"])]),
        .systemLibrary(name: "CPoppler", pkgConfig: "poppler-glib", providers: [.apt(["libpoppler-glib-dev"])]),
        .systemLibrary(
            name: "CFFmpeg", pkgConfig: "libavformat",
            providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavutil-dev", "libswresample-dev", "libswscale-dev"])]
        ),
        // Thin C functions in front of the variadic and macro parts of libvips and FFmpeg; no logic lives here.
        .target(
            name: "CPrismMedia", dependencies: ["CVips", "CFFmpeg"],
            linkerSettings: ["vips", "gobject-2.0", "glib-2.0", "avformat", "avcodec", "avutil", "swresample", "swscale"].map { .linkedLibrary($0) }
        ),
        // Decode, sniff, resize, re-encode, rasterize, resample, sample frames; limits against hostile input.
        .target(
            name: "PrismMedia",
            dependencies: ["CPrismMedia", "CVips", "CPoppler", "CFFmpeg", "PrismHandOff"]
        ),
        // --- end media core ---

        // --- provider plugins (issue 4) ---
        // The plugin ABI header, plugins/include/prism_plugin.h, as a module for the host and the plugins.
        .target(name: "CPrismPlugin", path: "plugins/include", publicHeadersPath: "."),
        // The plugin host: loading, hot reload, the capability matrix, planning, adaptation, calls.
        .target(
            name: "PrismProviders",
            dependencies: ["CPrismPlugin", "PrismProto", "PrismMedia", "CCurl", "PrismJSON", "PrismSchema", "PrismStore", "COpenSSL", "PrismHandOff",
                           // VendorConnection: HTTP/2 to vendors on PrismRPC's nghttp2 session.
                           "PrismRPC", "CNGHTTP2",
                           .product(name: "Logging", package: "swift-log"),
                           // ProviderMetrics: the prism_* families on the gateway's collector registry.
                           .product(name: "Prometheus", package: "swift-prometheus"),
                           .product(name: "Tracing", package: "swift-distributed-tracing")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Helpers for our C plugins: packing ProviderInfo / ProviderEvent and ending a call.
        .target(name: "PrismPluginSupport", dependencies: ["CPrismPlugin", "PrismProtoC"], path: "plugins/support"),
        // The example plugin (local/mediainfo) and the test plugins: C, the ABI header and protobuf-c only.
        .target(name: "PrismPluginExample", dependencies: ["CPrismPlugin", "PrismProtoC"], path: "plugins/example", exclude: ["Makefile"], publicHeadersPath: "."),
        .target(name: "PrismPluginTestkit", dependencies: ["CPrismPlugin", "PrismProtoC", "PrismPluginSupport"], path: "plugins/tests/testkit", publicHeadersPath: "."),
        .target(name: "PrismPluginBadABI", dependencies: ["CPrismPlugin"], path: "plugins/tests/badabi", publicHeadersPath: "."),
        .target(name: "PrismPluginRelay", dependencies: ["CPrismPlugin", "PrismProtoC", "PrismPluginSupport"], path: "plugins/tests/relay", publicHeadersPath: "."),
        // --- end provider plugins ---

        // --- local engine plugins (issue 5): each engine's library through pkg-config ---
        .systemLibrary(name: "CTesseract", path: "plugins/tesseract/system", pkgConfig: "tesseract", providers: [.apt(["libtesseract-dev", "tesseract-ocr-eng"])]),
        .systemLibrary(name: "CPocketSphinx", path: "plugins/pocketsphinx/system", pkgConfig: "pocketsphinx", providers: [.apt(["libpocketsphinx-dev", "pocketsphinx-en-us"])]),
        .systemLibrary(name: "CEspeakNG", path: "plugins/espeak/system", pkgConfig: "espeak-ng", providers: [.apt(["libespeak-ng-dev", "espeak-ng"])]),
        .target(name: "PrismPluginTesseract", dependencies: ["CPrismPlugin", "PrismProtoC", "PrismPluginSupport", "CTesseract"], path: "plugins/tesseract/src", publicHeadersPath: ".",
                linkerSettings: [.linkedLibrary("lept")]),
        .target(name: "PrismPluginPocketSphinx", dependencies: ["CPrismPlugin", "PrismProtoC", "PrismPluginSupport", "CPocketSphinx"], path: "plugins/pocketsphinx/src", publicHeadersPath: ".",
                linkerSettings: [.linkedLibrary("sphinxbase"), .linkedLibrary("m")]),
        .target(name: "PrismPluginEspeak", dependencies: ["CPrismPlugin", "PrismProtoC", "PrismPluginSupport", "CEspeakNG"], path: "plugins/espeak/src", publicHeadersPath: "."),
        // --- end local engine plugins ---

        // --- JSON (issue 11) ---
        // The JSON reader and writer shared by the plugins and the server; Foundation only.
        .target(name: "PrismJSON"),
        // Prism's own JSON Schema (draft 2020-12) validator: Extract checks every vendor answer with it.
        .target(name: "PrismSchema", dependencies: ["PrismJSON"]),
        // --- end JSON ---

        // --- vendor provider plugins (issue 6) ---
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // The support library for Swift plugins: the ABI entry plumbing, requests, events, HTTP, SSE.
        .target(name: "CPrismPluginKit"),
        .target(name: "PrismPluginKit", dependencies: ["CPrismPlugin", "CPrismPluginKit", "PrismProtoC", "CProtobufC", "PrismJSON"]),
        .target(name: "PrismPluginOpenAI", dependencies: ["PrismPluginKit"], path: "plugins/openai"),
        .target(name: "PrismPluginAnthropic", dependencies: ["PrismPluginKit"], path: "plugins/anthropic"),
        .target(name: "PrismPluginGemini", dependencies: ["PrismPluginKit"], path: "plugins/gemini"),
        // --- end vendor provider plugins ---

        // --- stores (issue 12) ---
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // Redis (issue 15): Debian's hiredis, used through a small pool of blocking connections.
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        // The embedded store (SQLite in WAL mode in the data folder) and the protocols a shared
        // store implements: the response cache now, batches next. Nothing of RPC or providers.
        .target(name: "PrismStore", dependencies: ["CSQLite", "CHiredis"]),
        // The shared store (issue 15): batches, the document index and usage in PostgreSQL when
        // PRISM_DATABASE_URL is set, through libpq (blocking calls on the store's own queues), not
        // postgres-nio: no build cost (its first build took 12 minutes here), and a server that is
        // down fails a call at once with libpq's reason instead of leaving it waiting in a pool.
        .systemLibrary(name: "CPostgres", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .target(name: "PrismStorePostgres", dependencies: ["PrismStore", "CPostgres"]),
        // --- end stores ---

        // The services of prism.v1.Prism and the standard gRPC services.
        .target(
            name: "PrismServer",
            dependencies: [
                "PrismRPC", "PrismProto", "PrismMedia", "PrismProviders", "PrismJSON", "PrismSchema", "PrismStore", "PrismStorePostgres",
                .product(name: "Logging", package: "swift-log"),
                // RPCMetrics (go-grpc-prometheus's families) and the /metrics exposition.
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "prism-server",
            dependencies: ["PrismServer", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "prism",
            dependencies: [
                // PrismProviders and PrismServer: `prism media … --provider` loads the plugins as the server does.
                "PrismRPC", "PrismProto", "PrismMedia", "PrismProviders", "PrismServer", "PrismJSON", "PrismStore",
                // `prism usage` reads the shared database when PRISM_DATABASE_URL is set.
                "PrismStorePostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        .testTarget(name: "PrismRPCTests", dependencies: ["PrismRPC", .product(name: "NIOPosix", package: "swift-nio"),
                                                    .product(name: "NIOEmbedded", package: "swift-nio"),
                                                    .product(name: "NIOConcurrencyHelpers", package: "swift-nio")]),
        .testTarget(name: "PrismServerTests", dependencies: ["PrismServer", "PrismRPC", "PrismProto", "PrismProviders", "PrismStore",
                                                       .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "PrismProtoTests", dependencies: ["PrismProto", "PrismJSON"]),
        .testTarget(name: "PrismMediaTests", dependencies: ["PrismMedia"]),
        .testTarget(name: "PrismProvidersTests", dependencies: ["PrismProviders", "PrismServer", "PrismRPC", "PrismProto", "PrismPluginKit", "PrismSchema"]),
        .testTarget(name: "PrismPluginKitTests", dependencies: ["PrismPluginKit", "PrismProto", "PrismProtoC", "CProtobufC", "CPrismPlugin"]),
        .testTarget(name: "PrismJSONTests", dependencies: ["PrismJSON"]),
        .testTarget(name: "PrismHandOffTests", dependencies: ["PrismHandOff"]),
        .testTarget(name: "PrismSchemaTests", dependencies: ["PrismSchema", "PrismJSON"], resources: [.copy("JSON-Schema-Test-Suite")]),
        .testTarget(name: "PrismStoreTests", dependencies: ["PrismStore", "PrismStorePostgres", "CSQLite"]),

        // --- fuzzing (issue 16) ---
        // The fuzz targets: arbitrary bytes into each parser; tools/fuzz.sh runs them under libFuzzer.
        .target(name: "PrismFuzz", dependencies: [
            "PrismRPC", "PrismProto", "PrismProtoC", "CProtobufC", "PrismJSON", "PrismSchema", "PrismPluginKit", "PrismMedia",
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
        ]),
        // Replays the committed seed corpora and reproducers (fuzz/) through every target.
        .testTarget(name: "PrismFuzzTests", dependencies: ["PrismFuzz"]),
        // --- end fuzzing ---
    ],
    swiftLanguageModes: [.v5]
)

// tools/fuzz.sh builds with PRISM_FUZZ=1: Prism's own modules get libFuzzer's coverage and
// AddressSanitizer (dependencies stay as they are), and `prism-fuzz` exists, an executable that runs
// libFuzzer's driver from its own main (PRISM_FUZZ_RUNTIME: the toolchain's libclang_rt.fuzzer_no_main,
// found by the script). Without PRISM_FUZZ the package is exactly as above.
if Context.environment["PRISM_FUZZ"] == "1", let fuzzerRuntime = Context.environment["PRISM_FUZZ_RUNTIME"] {
    let instrumented: Set<String> = ["PrismJSON", "PrismSchema", "PrismProto", "PrismProtoC", "PrismRPC",
                                     "PrismPluginKit", "CPrismPluginKit", "PrismMedia", "CPrismMedia", "PrismFuzz"]
    for target in package.targets where instrumented.contains(target.name) {
        if target.name.hasPrefix("C") || target.name == "PrismProtoC" {
            target.cSettings = (target.cSettings ?? []) + [.unsafeFlags(["-fsanitize=fuzzer-no-link,address"])]
        } else {
            target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-sanitize=fuzzer,address"])]
        }
    }
    package.targets.append(.executableTarget(
        name: "prism-fuzz", dependencies: ["PrismFuzz"], path: "fuzz/prism-fuzz",
        swiftSettings: [.unsafeFlags(["-sanitize=fuzzer,address"])],
        linkerSettings: [.unsafeFlags(["-sanitize=address", "-Xlinker", fuzzerRuntime, "-Xlinker", "-lstdc++"])]
    ))
    package.products.append(.executable(name: "prism-fuzz", targets: ["prism-fuzz"]))
}
