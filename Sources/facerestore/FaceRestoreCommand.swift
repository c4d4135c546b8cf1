// The `facerestore` command line (swift-argument-parser).

import ArgumentParser
import Foundation

@main
struct FaceRestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "facerestore",
        abstract: "Restore faces in old and damaged photos (GFP-GAN, GPEN) natively, without Python.",
        version: "0.1.0",
        subcommands: [Restore.self, Detect.self, Models.self, InspectWeights.self]
    )
}

/// Prints one line to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// 87143276 → "87,143,276" (locale-independent).
func grouped(_ n: Int) -> String {
    let digits = String(n.magnitude)
    var out = ""
    for (i, ch) in digits.enumerated() {
        if i > 0, (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(ch)
    }
    return (n < 0 ? "-" : "") + out
}
