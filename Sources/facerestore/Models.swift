// `facerestore models list|path|verify|fetch`: the library's model catalog and store
// (FaceRestore/ModelCatalog.swift, ModelStore.swift): what is installed where, integrity checks,
// and resumable downloads with a progress line.

import ArgumentParser
import FaceRestore
import Foundation

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, locate, verify and download models.",
        subcommands: [List.self, Path.self, Verify.self, Fetch.self],
        defaultSubcommand: List.self)

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every known model and whether it is installed.")
        func run() throws {
            let store = ModelStore()
            print("models folder: \(store.directory)")
            for e in ModelCatalog.entries {
                let state: String
                do { state = "installed: " + (try store.locate(e)) } catch {
                    if case ModelStoreError.wrongSize = error { state = "damaged: \(error)" } else { state = "not installed" }
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
            let store = ModelStore()
            guard let name else { print(store.directory); return }
            let e = try store.entry(named: name)
            print((try? store.locate(e)) ?? store.installPath(e))
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check installed models: size, SHA-256 where published, and that the file holds the expected network.")
        func run() throws {
            let store = ModelStore()
            var bad = 0, found = 0
            for e in ModelCatalog.entries {
                let path: String
                do { path = try store.locate(e) } catch {
                    if case ModelStoreError.wrongSize = error { printError("facerestore: \(error)"); bad += 1 }
                    continue
                }
                found += 1
                do {
                    print("ok  \(e.name): \(path) (\(try store.verify(e, at: path)))")
                } catch {
                    printError("facerestore: \(error)")
                    bad += 1
                }
            }
            if found == 0 && bad == 0 { print("no models installed in \(store.directory)") }
            if bad > 0 { throw ExitCode(1) }
        }
    }

    struct Fetch: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Download a model into the models folder (resumable).")
        @Argument(help: "Model names (see `models list`).") var names: [String]
        @Flag(name: .long, help: "Download again even when installed.") var force = false

        func run() throws {
            let store = ModelStore()
            var failed = 0
            for name in names {
                do {
                    let e = try store.entry(named: name)
                    if !force, let path = try? store.locate(e) { print("\(e.name): already installed at \(path)"); continue }
                    if e.nonCommercial { print("\(e.name): \(e.license)") }
                    let line = ProgressLine(title: e.title)
                    defer { line.clear() }
                    var show: (@Sendable (Int64, Int64?) -> Void)?
                    if line.isTerminal { show = { @Sendable received, expected in line.show(received, expected) } }
                    let path = try store.fetch(e, progress: show)
                    line.clear()
                    print("\(e.name): installed at \(path)")
                } catch {
                    printError("facerestore: \(error)")
                    failed += 1
                }
            }
            if failed > 0 { throw ExitCode(1) }
        }
    }
}

/// A download's progress, rewritten in place on a terminal at most five times a second.
final class ProgressLine: @unchecked Sendable {
    // @unchecked: `show` is called serially by the download's delegate queue.
    let title: String
    let isTerminal = isatty(STDERR_FILENO) == 1
    private var lastShown = Date.distantPast

    init(title: String) { self.title = title }

    func show(_ received: Int64, _ expected: Int64?) {
        guard Date().timeIntervalSince(lastShown) > 0.2 else { return }
        lastShown = Date()
        let pct = expected.map { String(format: " %5.1f%%", 100 * Double(received) / Double(max($0, 1))) } ?? ""
        FileHandle.standardError.write(Data("\r\u{1B}[K\(title): \(grouped(Int(received))) bytes\(pct)".utf8))
    }

    func clear() { if isTerminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) } }
}
