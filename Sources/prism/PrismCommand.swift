// prism: the command-line client of the Prism gateway. Talks gRPC to a running server
// (`--server` or PRISM_ADDRESS) and, for `media`, works offline on local files.
import ArgumentParser

@main
struct PrismCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prism",
        abstract: "Client of the Prism multi-modal AI gateway.",
        subcommands: [HealthCommand.self, ServicesCommand.self, ProvidersCommand.self, GenerateCommand.self,
                      ExtractCommand.self, TranscribeCommand.self, SpeakCommand.self, OCRCommand.self, MediaCommand.self,
                      IndexCommand.self, BatchCommand.self, UsageCommand.self])
}
