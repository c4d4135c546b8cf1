// The `facerestore` command line (swift-argument-parser): argument mapping onto the FaceRestore
// library. Errors are thrown, printed once as one line (`facerestore: …`) and exit 1; usage
// errors print ArgumentParser's message and usage and exit 2 (ArgumentParser's own code for them
// is 64, EX_USAGE; 2 is what `restore` uses for a batch that cannot run at all).

import ArgumentParser
import FaceRestore
import Foundation

@main
struct FaceRestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "facerestore",
        abstract: "Restore faces in old and damaged photos (GFP-GAN, GPEN) natively, without Python.",
        version: faceRestoreVersion,
        subcommands: [Restore.self, Report.self, Serve.self, Detect.self, Degrade.self, Eval.self, BenchmarkCommand.self, Models.self,
                      InspectWeights.self, Flicker.self]
    )

    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if error is ExitCode || error is ValidationError || error is CleanExit
                || String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") {
                if exitCode(for: error) == .validationFailure {
                    printError(fullMessage(for: error))
                    Foundation.exit(usageExitCode)
                }
                exit(withError: error)
            }
            printError("facerestore: \(error)")
            Foundation.exit(1)
        }
    }
}

/// The exit status of a command line that cannot be run as given (bad or missing arguments).
let usageExitCode: Int32 = 2

/// A failure the CLI words itself (a library error with the flag that fixes it). One line.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Options every command that computes shares.
struct ComputeOptions: ParsableArguments {
    @Option(name: .long, help: "CPU threads (default: all cores).")
    var threads: Int?

    @Option(name: .long, help: "Convolution precision: fp32 (default, matches the reference) or bf16 (faster, opt-in).")
    var precision: Precision = .fp32

    @Flag(name: .long, help: "Direct convolutions only (no Winograd): about 30% slower, less memory; outputs differ by a few ulps.")
    var noWinograd = false

    @Flag(name: .long, help: "Skip the CRC-32 check of .pth checkpoints on load (about 0.2 s for a 350 MB model).")
    var noVerify = false

    @Option(name: .long, help: ArgumentHelp("Refuse an image whose restoration would need more memory than this (estimated from its header): 8G, 512M, or none (default: 85% of this machine's memory).", valueName: "size"))
    var maxMemory: String?

    func validate() throws {
        let most = 4 * ProcessInfo.processInfo.activeProcessorCount
        if let threads, !(1...most).contains(threads) {
            throw ValidationError("--threads must be between 1 and \(most) (four per core)")
        }
        if let maxMemory, maxMemory.lowercased() != "none", MemoryBudget(parsing: maxMemory) == nil {
            throw ValidationError("--max-memory takes a size such as 8G or 512M, or none; got '\(maxMemory)'")
        }
    }

    /// The memory budget: `--max-memory`, else the machine's default; nil for `none`.
    var memoryBudget: MemoryBudget? {
        guard let maxMemory else { return .machineDefault }
        return maxMemory.lowercased() == "none" ? nil : MemoryBudget(parsing: maxMemory)
    }

    var context: ComputeContext { ComputeContext(threads: threads, precision: precision, winograd: !noWinograd) }
}

extension Precision: ExpressibleByArgument {}

extension OutputFormat: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument.lowercased() {
        case "jpeg": self = .jpg
        case "tif": self = .tiff
        default: self.init(rawValue: argument.lowercased())
        }
    }
}

/// Prints one line to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// A library error with the flag that would fix it, for the CLI's one line.
func withHint(_ error: Error) -> Error {
    if case .noFaceUpsampling? = error as? PipelineError { return CLIError("\(error): --face-upsample works with -v codeformer") }
    guard let store = error as? ModelStoreError else { return error }
    switch store {
    case .notInstalled(let entry, _) where entry.kind == .faceRestoration && entry.pypi == nil:
        return CLIError("\(store), or pass --model-path FILE")
    case .noneInstalled(let kind, let candidates, _):
        let flag: String
        switch kind {
        case .faceRestoration: flag = "--model-path"
        case .faceDetection: flag = "--detector"
        case .faceParsing: flag = "--parser"
        case .imageRestoration: flag = "--bg-model"
        case .faceRecognition: flag = "--dlib-weights"
        }
        let fetch = candidates.first.map { "run `facerestore models fetch \($0.name)`, or " } ?? ""
        return CLIError("\(store) (or \(fetch)pass \(flag) FILE)")
    default:
        return error
    }
}
