// `facerestore benchmark`: degrade → restore → score for each model, with the reports. Argument
// mapping onto the library's `Benchmark`.

import ArgumentParser
import FaceRestore
import Foundation

struct BenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "benchmark",
        abstract: "Compare restorers as the papers do: degrade high-quality faces, restore them with each model, score.",
        discussion: """
            Writes OUT/gt, OUT/lq, one folder per model, and OUT/report.md, report.json and report.html. Face models \
            restore the degraded faces as aligned crops; a general restorer (a Real-ESRGAN name or file) runs on the \
            whole face at scale 1. The input itself is the baseline row.
            """)

    @Option(name: .long, help: "A folder of high-quality (aligned) face images.")
    var hq: String

    @Option(name: .shortAndLong, parsing: .singleValue, help: "Models to compare: names or files, comma-separated or repeated (e.g. -v 1.4,gpen-512).")
    var version: [String]

    @Option(name: .shortAndLong, help: "Output folder.")
    var output: String

    @Option(name: .long, help: "Seed of image 0 of the degradation (image i uses seed + i).")
    var seed = 0

    @Option(name: .long, help: "Degradation pipeline. (values: gfpgan, gpen, codeformer)")
    var preset: DegradationSettings.Pipeline = .gfpgan

    @Option(name: .long, help: "Example faces shown in report.html.")
    var examples = 4

    @OptionGroup var networks: MetricWeightOptions

    @OptionGroup var compute: ComputeOptions

    func run() throws {
        var c = BenchmarkConfiguration(highQuality: hq, output: output,
                                       models: version.flatMap { $0.split(separator: ",").map { ModelSpec(String($0)) } })
        c.degradation = .preset(preset)
        c.seed = seed
        c.threads = compute.threads
        c.examples = examples
        c.metricWeights = networks.weights
        let terminal = isatty(STDERR_FILENO) == 1
        let report: BenchmarkReport
        do {
            report = try Benchmark(c).run { line in
                if terminal { FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8)) }
            }
        } catch { throw withHint(error) }
        if terminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        try writeFileAtomically(Data(report.markdown.utf8), to: output + "/report.md")
        try writeFileAtomically(try encoder.encode(report), to: output + "/report.json")
        try writeFileAtomically(Data(report.html(examples: examples).utf8), to: output + "/report.html")
        print(report.markdown)
        print("reports: \(output)/report.md, report.json, report.html")
        let failures = report.rows.flatMap(\.failures)
        for f in failures { printError("facerestore: \(f)") }
        if !failures.isEmpty { throw ExitCode(1) }
    }
}
