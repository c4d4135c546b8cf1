// `facerestore report`: merges the JSON Lines reports of `restore --report` from several workers
// and runs into one line per input with its final status (the rules are the library's
// `BatchReportMerge`), or a summary.

import ArgumentParser
import FaceRestore
import Foundation

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge the reports of `restore --report` (several workers, reruns) into one line per input.",
        discussion: """
        Prints one JSON line per input with its final status: a done, no_faces or failed line wins over a later \
        skipped one (a rerun with --skip-existing), a later done wins over an earlier failed, and a later failed \
        never replaces a done (its outputs are still there). A truncated last line (a worker killed while \
        writing) is ignored with a warning. --summary prints the counts per status and the failed inputs instead.

        Exit status: 0 when no input failed; 1 when some inputs failed; 2 when a report cannot be read.
        """
    )

    @Argument(help: ArgumentHelp("Report files (JSON Lines) of any number of workers and runs.", valueName: "file.jsonl"))
    var files: [String] = []

    @Flag(name: .long, help: "Print the number of inputs per status and the failed inputs instead of the merged lines.")
    var summary = false

    func validate() throws {
        if files.isEmpty { throw ValidationError("give one or more report files") }
    }

    func run() throws {
        var reports: [(name: String, data: Data)] = []
        for file in files {
            do { reports.append((file, try Data(contentsOf: URL(fileURLWithPath: file)))) } catch {
                printError("facerestore: \(file): cannot read the report (\(FileManager.default.fileExists(atPath: file) ? error.localizedDescription : "no such file"))")
                throw ExitCode(2)
            }
        }
        let merge = BatchReportMerge.merge(reports)
        for warning in merge.warnings { printError("facerestore: warning: \(warning)") }
        if summary {
            let counts = merge.counts
            let parts = BatchStatus.allCases.map { "\(counts[$0] ?? 0) \($0.rawValue)" }
            print("\(plural(merge.records.count, "input")): " + parts.joined(separator: ", "))
            if !merge.failed.isEmpty {
                print("failed:")
                for record in merge.failed { print("  \(record.error ?? record.path)") }
            }
        } else {
            var out = ""
            for record in merge.records { out += record.jsonLine + "\n" }
            FileHandle.standardOutput.write(Data(out.utf8))
        }
        if !merge.failed.isEmpty { throw ExitCode(1) }
    }
}
