// Runs the built `facerestore` binary and checks what a user sees (swift-argument-parser style).

import Foundation
import Testing

/// The `facerestore` executable built next to this test bundle.
let binary: URL = {
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    if dir.lastPathComponent == "MacOS" || dir.pathExtension == "xctest" { dir = dir.deletingLastPathComponent() }
    for candidate in [dir, Bundle.main.bundleURL.deletingLastPathComponent()] {
        let url = candidate.appendingPathComponent("facerestore")
        if FileManager.default.isExecutableFile(atPath: url.path) { return url }
    }
    return dir.appendingPathComponent("facerestore")
}()

struct RunResult { let status: Int32; let stdout: String; let stderr: String }

func run(_ args: [String], environment: [String: String] = [:]) throws -> RunResult {
    let p = Process()
    p.executableURL = binary
    p.arguments = args
    if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return RunResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}

let cliFixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
let weightsFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("FaceRestoreWeightsTests/Fixtures")

let fullRandomCheckpoint: String? = {
    let dir = ProcessInfo.processInfo.environment["FACERESTORE_REFERENCE_FIXTURES"]
        ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/facerestore-reference/fixtures").path
    let path = dir + "/gfpgan_v1.4_random.pth"
    return FileManager.default.fileExists(atPath: path) ? path : nil
}()

@Suite struct InspectWeightsCommand {
    @Test func reportsGFPGANv14Layout() throws {
        let r = try run(["inspect-weights", cliFixtures.appendingPathComponent("gfpgan_v1.4_layout.pth").path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("tensors: 285\n"))
        #expect(r.stdout.contains("elements: 87,143,276\n"))
        #expect(r.stdout.contains("tensors from 'params_ema'"))
        #expect(r.stdout.contains("dtypes: float32 ×285"))
        #expect(r.stdout.contains("architecture: GFPGANv1Clean (GFPGAN v1.2/v1.3/v1.4 layout): out_size 512, channel_multiplier 2"))
        // the largest tensor is the W+ projection
        #expect(r.stdout.contains("largest tensors:\n  final_linear.weight  [8192, 4096]  33,554,432  float32"))
    }

    /// The full-size random-weight checkpoint written by torch (scripts/make_fixtures.py), when present.
    @Test(.enabled(if: fullRandomCheckpoint != nil, "run scripts/make_fixtures.py to create it"))
    func reportsFullRandomGFPGANv14() throws {
        let r = try run(["inspect-weights", fullRandomCheckpoint!])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("tensors: 285\n"))
        #expect(r.stdout.contains("elements: 87,143,276\n"))
        #expect(r.stdout.contains("architecture: GFPGANv1Clean (GFPGAN v1.2/v1.3/v1.4 layout): out_size 512, channel_multiplier 2"))
    }

    @Test func hostilePickleIsOneLineAndNonZero() throws {
        let r = try run(["inspect-weights", weightsFixtures.appendingPathComponent("evil_zip.pth").path])
        #expect(r.status != 0)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(r.stderr.contains("evil_zip.pth: refusing to load: the checkpoint comes from 'posix.system'"))
    }

    @Test func badFilesGiveOneClearLine() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("facerestore-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let full = try Data(contentsOf: weightsFixtures.appendingPathComponent("plain_zip.pth"))
        let cases: [(String, Data?, String)] = [
            ("truncated.pth", full.prefix(full.count / 2), "file is truncated"),
            ("empty.pth", Data(), "file is empty"),
            ("garbage.pth", Data((0..<2000).map { UInt8(truncatingIfNeeded: $0 &* 2654435761) }), "not a weights file"),
            ("missing.pth", nil, "no such file"),
        ]
        for (name, data, message) in cases {
            let path = dir.appendingPathComponent(name).path
            if let data { try data.write(to: URL(fileURLWithPath: path)) }
            let r = try run(["inspect-weights", path])
            #expect(r.status == 1, "\(name)")
            #expect(r.stderr.hasPrefix("facerestore: \(path): \(message)"), "\(name): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(name): \(r.stderr)")
        }
    }
}
