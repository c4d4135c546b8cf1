// `facerestore inspect-weights FILE`: what a weights file holds and which network it is.

import ArgumentParser
import FaceRestore
import Foundation

struct InspectWeights: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect-weights",
        abstract: "Show the tensors in a weights file (.pth, .pt, .safetensors) and the architecture they fit.",
        discussion: "Reading never executes code from the file: pickles are parsed as data with an allow-list."
    )

    @Argument(help: "The weights file.")
    var file: String

    @Option(name: .long, help: "How many of the largest tensors to list.")
    var top: Int = 10

    @Flag(name: .long, help: "List every tensor in file order.")
    var all = false

    @Flag(name: .long, help: "Skip the CRC-32 check of .pth members (to look inside a file known to be damaged).")
    var noVerify = false

    func run() throws {
        let (sd, format) = try WeightsFile.load(path: file, verifyChecksums: !noVerify)
        var lines: [String] = ["file: \(file)"]
        var fmt = "format: \(format.rawValue)"
        if let w = sd.wrapper { fmt += ", tensors from '\(w)'" }
        if let p = sd.strippedPrefix { fmt += ", prefix '\(p)' removed" }
        lines.append(fmt)
        if !sd.skippedEntries.isEmpty {
            let shown = sd.skippedEntries.prefix(6).joined(separator: ", ")
            lines.append("also in file (not used): \(shown)\(sd.skippedEntries.count > 6 ? ", …" : "")")
        }
        lines.append("tensors: \(grouped(sd.count))")
        lines.append("elements: \(grouped(sd.totalElements))")
        var byType: [DType: (count: Int, elements: Int)] = [:]
        for t in sd.tensors.values { byType[t.dtype, default: (0, 0)].count += 1; byType[t.dtype, default: (0, 0)].elements += t.count }
        let types = byType.sorted { $0.value.elements > $1.value.elements }
            .map { "\($0.key.rawValue) ×\($0.value.count) (\(grouped($0.value.elements)) elements)" }
        lines.append("dtypes: \(types.joined(separator: ", "))")
        lines.append("architecture: \(Architecture.detect(sd)?.description ?? "not recognized")")
        func row(_ name: String) -> String {
            guard let t = sd.tensors[name] else { return "  \(name)  (missing)" }
            return "  \(name)  [\(t.shape.map(String.init).joined(separator: ", "))]  \(grouped(t.count))  \(t.dtype.rawValue)"
        }
        if all {
            lines.append("all tensors:")
            lines += sd.names.map(row)
        } else if top > 0 {
            lines.append("largest tensors:")
            let largest = sd.names.enumerated().sorted { (a, b) in
                let (ca, cb) = (sd.tensors[a.element]?.count ?? 0, sd.tensors[b.element]?.count ?? 0)
                return ca != cb ? ca > cb : a.offset < b.offset
            }.prefix(top)
            lines += largest.map { row($0.element) }
        }
        print(lines.joined(separator: "\n"))
    }
}
