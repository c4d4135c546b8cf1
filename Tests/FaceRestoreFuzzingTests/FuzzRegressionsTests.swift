// Replays every committed fuzz input through its target in-process: the seed corpus (each
// valid file must still be accepted) and every input that once crashed a parser (each must now
// be refused or read, without a crash).

import FaceRestoreFuzzing
import Foundation
import Testing

let fuzzRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()

func inputs(_ kind: String, _ target: FuzzTarget) -> [URL] {
    let dir = fuzzRoot.appendingPathComponent(kind).appendingPathComponent(target.rawValue)
    return ((try? FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)) ?? [])
        .filter { !$0.lastPathComponent.hasPrefix(".") }.sorted { $0.path < $1.path }
}

@Suite struct FuzzRegressions {
    @Test(arguments: FuzzTarget.allCases)
    func seedsAreAccepted(_ target: FuzzTarget) throws {
        let files = inputs("corpus", target)
        #expect(!files.isEmpty, "every target has seeds")
        for file in files { #expect(target.run(try Data(contentsOf: file)), "\(file.lastPathComponent)") }
    }

    @Test(arguments: FuzzTarget.allCases)
    func crashInputsNoLongerCrash(_ target: FuzzTarget) throws {
        for file in inputs("regressions", target) { target.run(try Data(contentsOf: file)) }
    }
}
