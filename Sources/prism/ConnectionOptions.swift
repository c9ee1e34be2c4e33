// How the CLI reaches a server: address, TLS and API key, from flags or the environment.
import ArgumentParser
import Foundation
import PrismRPC

struct ConnectionOptions: ParsableArguments {
    @Option(help: "Server address HOST:PORT (default: PRISM_ADDRESS or 127.0.0.1:50051).")
    var server: String?

    @Flag(help: "Connect with TLS (ALPN h2).")
    var tls = false

    @Option(help: "PEM CA bundle to verify the server with (implies --tls; default: system roots).")
    var caCert: String?

    @Option(help: "API key sent as 'authorization: Bearer KEY' (default: PRISM_API_KEY).")
    var apiKey: String?

    var address: (host: String, port: Int) {
        get throws {
            let text = server ?? ProcessInfo.processInfo.environment["PRISM_ADDRESS"] ?? "127.0.0.1:50051"
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else {
                throw ValidationError("server address '\(text)' must be HOST:PORT")
            }
            var host = String(text[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            return (host, port)
        }
    }

    var metadata: Metadata {
        var metadata = Metadata()
        if let key = apiKey ?? ProcessInfo.processInfo.environment["PRISM_API_KEY"] {
            metadata.add("authorization", "Bearer \(key)")
        }
        return metadata
    }

    func connect() async throws -> RPCClient {
        let (host, port) = try address
        let tlsConfiguration = (tls || caCert != nil) ? TLSConfiguration(trustRootsFile: caCert) : nil
        return try await RPCClient.connect(host: host, port: port, tls: tlsConfiguration)
    }
}

/// Prints an RPC failure the way a user wants to read it, and exits non-zero.
func reportFailure(_ error: Error) -> ExitCode {
    if let rpc = error as? RPCError {
        FileHandle.standardError.write(Data("prism: \(rpc.code): \(rpc.message)\n".utf8))
    } else {
        FileHandle.standardError.write(Data("prism: \(error)\n".utf8))
    }
    return ExitCode(1)
}
