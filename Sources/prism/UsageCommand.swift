// `prism usage`: what each API key spent per model and UTC day, read straight from the usage store
// the servers write (PostgreSQL when PRISM_DATABASE_URL is set, else the embedded database in
// PRISM_DATA_DIR). No RPC: usage is an operator's question, answered where the data is.
import ArgumentParser
import Foundation
import PrismStore
import PrismStorePostgres

struct UsageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage",
        abstract: "Print usage per API key, model and UTC day (requests, tokens, cost).",
        discussion: """
            Reads the shared database when PRISM_DATABASE_URL is set (several replicas), else the server's data \
            folder: PRISM_DATA_DIR, else $XDG_DATA_HOME/prism or ~/.local/share/prism.
            """)

    @Option(help: "Only this key's rows (its name in auth.keys; \"\" for unnamed keys and auth off).") var key: String?
    @Option(help: "Only days on or after this one (YYYY-MM-DD, UTC).") var since: String?
    @Flag(help: "Print the rows as a JSON array.") var json = false

    func validate() throws {
        if let since, since.range(of: #"^\d{4}-\d{2}-\d{2}$"#, options: .regularExpression) == nil {
            throw ValidationError("--since must be a date as YYYY-MM-DD, not '\(since)'")
        }
    }

    func run() async throws {
        let rows: [UsageRecord]
        do {
            rows = try await Self.store().rows(key: key, since: since)
        } catch {
            throw reportFailure(error)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(rows), as: UTF8.self))
            return
        }
        guard !rows.isEmpty else {
            print("no usage recorded\(key.map { " for key '\($0)'" } ?? "")\(since.map { " since \($0)" } ?? "")")
            return
        }
        let header = ["DAY", "KEY", "MODEL", "REQUESTS", "INPUT TOKENS", "OUTPUT TOKENS", "COST USD"]
        let table = rows.map { [$0.day, $0.key.isEmpty ? "-" : $0.key, $0.model, "\($0.requests)", "\($0.inputTokens)",
                                "\($0.outputTokens)", String(format: "%.6f", Double($0.costMicros) / 1e6)] }
        let widths = header.indices.map { column in ([header] + table).map { $0[column].count }.max() ?? 0 }
        for line in [header] + table {
            print(line.enumerated().map { column, cell in
                column >= 3 ? String(repeating: " ", count: widths[column] - cell.count) + cell
                            : cell + String(repeating: " ", count: widths[column] - cell.count)
            }.joined(separator: "  "))
        }
    }

    /// The servers' usage store: the shared database, else this machine's data folder.
    static func store() throws -> any UsageStore {
        let environment = ProcessInfo.processInfo.environment
        if let url = environment["PRISM_DATABASE_URL"], !url.isEmpty {
            // The servers migrate the schema; a database none has used yet fails with its reason.
            return PostgresUsageStore(pool: PostgresPool(url: url, connections: 1))
        }
        guard let directory = DataDirectory.resolve(environment) else {
            throw StoreError("no data folder: set PRISM_DATA_DIR (HOME is not set either)")
        }
        let path = directory + "/" + StoreLimits.databaseFileName
        guard FileManager.default.fileExists(atPath: path) else {
            throw StoreError("no usage recorded: there is no database at \(path) (PRISM_DATA_DIR)")
        }
        return SQLiteUsageStore(store: try EmbeddedStore(directory: directory, readConnections: 1))
    }
}
