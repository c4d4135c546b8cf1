// `facerestore serve`: flags onto `ServerConfiguration`; the server (FaceRestoreServer) owns the
// rest. Prints where it listens and how to stop it; logs go to standard error.

import ArgumentParser
import FaceRestore
import FaceRestoreServer
import Foundation
import Logging
import Synchronization

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the web page (upload photos, get them back restored, side by side) and its REST API.",
        discussion: """
        Open http://HOST:PORT/ in a browser. The API is under /api/v1 (its OpenAPI document: /api/v1/openapi.json). \
        There is no authentication: the server listens on 127.0.0.1 unless --host says otherwise. \
        Stop it with Ctrl-C or SIGTERM: running jobs finish, queued ones are marked failed.
        """
    )

    @Option(name: .long, help: "Address to listen on (0.0.0.0: every interface; there is no authentication).")
    var host = "127.0.0.1"

    @Option(name: .long, help: "Port to listen on (0: any free port).")
    var port = 8080

    @Option(name: [.customShort("v"), .customLong("version")],
            help: "Default face model: auto (the first installed), GFPGAN 1, 1.2, 1.3, 1.4, restoreformer, restoreformer++, codeformer (its fidelity weight set per job), or gpen-256/512/1024/2048. Clients may pick another installed one.")
    var modelVersion = "auto"

    @Option(name: .customLong("model-path"), help: "A GFPGAN, RestoreFormer, CodeFormer or GPEN checkpoint as the default model instead of -v.")
    var modelPath: String?

    @Option(name: .long, help: "Face detector: auto, a model name, or a weights file.")
    var detector = "auto"

    @Flag(name: .customLong("no-parse"), help: "Paste faces back with the square mask instead of the ParseNet face mask.")
    var noParse = false

    @Option(name: .customLong("bg-model"), help: "Real-ESRGAN model for the 'realesrgan' background and the offline fallback (auto, a name or a file).")
    var bgModel = "auto"

    @Option(name: .customLong("max-upload-mb"), help: "Largest upload request, in MB.")
    var maxUploadMB = 50

    @Option(name: .customLong("max-pixels"), help: "Largest input image, in pixels (checked from its header before decoding).")
    var maxPixels = 50_000_000

    @Option(name: .long, help: "Jobs restored at once (they share the loaded models and the cores; a job running alone gets every core).")
    var jobs = 1

    @Option(name: .long, help: "Jobs that may wait in the queue; beyond it uploads get 503 with Retry-After.")
    var queue = 32

    @Option(name: .long, help: "Folder for uploads and results (default: a temporary folder, removed at exit).")
    var data: String?

    @Option(name: .customLong("expire-minutes"), help: "Finished jobs and their files are removed after this many minutes.")
    var expireMinutes = 60

    @Option(name: .customLong("cache-mb"), help: "Memory kept for instant re-blending of finished jobs, in MB.")
    var cacheMB = 1024

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    @Option(name: .customLong("max-identity-drift"),
            help: "Paste faces whose ID-dlib distance to the person in the photo exceeds this with a lower weight (needs dlib's face-recognition model).")
    var maxIdentityDrift: Double?

    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if let d = maxIdentityDrift, !(0...2).contains(d) { throw ValidationError("--max-identity-drift is an ID-dlib distance between 0 and 2") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0 to 65535") }
        guard (1...4096).contains(maxUploadMB) else { throw ValidationError("--max-upload-mb must be 1 to 4096") }
        guard (1...1_000_000_000).contains(maxPixels) else { throw ValidationError("--max-pixels must be 1 to 1000000000") }
        guard (1...64).contains(jobs) else { throw ValidationError("--jobs must be 1 to 64") }
        guard (0...100_000).contains(queue) else { throw ValidationError("--queue must be 0 to 100000") }
        guard (1...525_600).contains(expireMinutes) else { throw ValidationError("--expire-minutes must be 1 to 525600") }
        guard (0...1_048_576).contains(cacheMB) else { throw ValidationError("--cache-mb must be 0 to 1048576") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: unknown level '\(logLevel)'") }
    }

    var serverConfiguration: ServerConfiguration {
        var c = ServerConfiguration()
        c.host = host
        c.port = port
        c.restorer = Restorer.Configuration(model: modelPath.map { .file($0) } ?? ModelSpec(modelVersion))
        c.restorer.detector = ModelSpec(detector)
        c.restorer.useParser = !noParse
        c.restorer.generalModel = ModelSpec(bgModel)
        c.restorer.threads = compute.threads
        c.restorer.precision = compute.precision
        c.restorer.winograd = !compute.noWinograd
        c.restorer.verifyChecksums = !compute.noVerify
        c.restorer.maxIdentityDrift = maxIdentityDrift
        // Jobs run side by side: each gets its share of the budget.
        c.restorer.memoryBudget = compute.memoryBudget.map { MemoryBudget(bytes: $0.bytes / Int64(max(jobs, 1))) }
        c.maxUploadBytes = maxUploadMB << 20
        c.maxPixels = maxPixels
        c.workers = jobs
        c.queueCapacity = queue
        c.dataDirectory = data
        c.jobLifetime = .seconds(expireMinutes * 60)
        c.reblendCacheBytes = cacheMB << 20
        return c
    }

    func run() throws {
        ProcessTuning.keepFreedMemoryForReuse()
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let configuration = serverConfiguration
        let server: FaceRestoreServer
        do { server = try FaceRestoreServer(configuration) } catch { throw withHint(error) }
        let restorer = server.defaultRestorer
        if let notice = restorer.licenseNotice { printError("facerestore: \(notice)") }
        for warning in restorer.warnings { printError("facerestore: \(warning)") }
        if !configuration.isLoopback {
            printError("facerestore: warning: listening on \(host): anyone who can reach this address can upload and read results (there is no authentication)")
        }
        let shown = host.contains(":") ? "[\(host)]" : host
        let done = DispatchSemaphore(value: 0)
        let failure = Mutex<(any Error)?>(nil)
        Task {
            do {
                try await server.run { port in
                    FileHandle.standardOutput.write(Data("FaceRestore \(faceRestoreVersion) is serving http://\(shown):\(port)/ (\(restorer.modelName), \(configuration.workers) job\(configuration.workers == 1 ? "" : "s") at a time); Ctrl-C stops it\n".utf8))
                }
            } catch {
                failure.withLock { $0 = error }
            }
            done.signal()
        }
        done.wait()
        if let error = failure.withLock({ $0 }) { throw CLIError("serve: \(error)") }
    }
}
