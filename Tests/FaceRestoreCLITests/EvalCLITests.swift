// `facerestore eval` on folders that do not line up and with weight files that are missing or
// wrong: one line each, the other images scored, exit 1 at the end.

import FaceRestore
import Foundation
import Testing

@Suite struct EvalCLI {
    /// Two restored faces, one reference of another size, one with no reference, one unreadable.
    func folders() throws -> (restored: URL, reference: URL) {
        let restored = try temporaryFolder("eval-restored"), reference = try temporaryFolder("eval-reference")
        let faces = repoRoot.appendingPathComponent("examples/faces")
        try FileManager.default.copyItem(at: faces.appendingPathComponent("astronaut.jpg"), to: restored.appendingPathComponent("astronaut.jpg"))
        try FileManager.default.copyItem(at: faces.appendingPathComponent("astronaut.jpg"), to: reference.appendingPathComponent("astronaut.jpg"))
        try FileManager.default.copyItem(at: faces.appendingPathComponent("grace_hopper.jpg"), to: restored.appendingPathComponent("grace_hopper.jpg"))
        try FileManager.default.copyItem(at: cliFixtures.appendingPathComponent("face.png"), to: reference.appendingPathComponent("grace_hopper.png"))
        try FileManager.default.copyItem(at: faces.appendingPathComponent("astronaut.jpg"), to: restored.appendingPathComponent("stranger.jpg"))
        try Data("not a png".utf8).write(to: restored.appendingPathComponent("broken.png"))
        return (restored, reference)
    }

    @Test func mismatchedFoldersGiveOneLineEachAndTheRestIsScored() throws {
        let (restored, reference) = try folders()
        defer { for d in [restored, reference] { try? FileManager.default.removeItem(at: d) } }
        let json = restored.deletingLastPathComponent().appendingPathComponent("eval-\(getpid()).json")
        defer { try? FileManager.default.removeItem(at: json) }
        let r = try run(["eval", "--restored", restored.path, "--reference", reference.path, "--metrics", "psnr", "ssim",
                         "--per-image", "--json", json.path])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stdout.contains("astronaut.jpg") && r.stdout.contains("mean (1)"), "\(r.stdout)")
        let lines = r.stderr.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.contains("broken.png") }, "\(lines)")
        #expect(lines.contains { $0.contains("stranger") && $0.contains("no reference image") }, "\(lines)")
        #expect(lines.contains { $0.contains("grace_hopper") }, "the size mismatch: \(lines)")
        #expect(lines.contains { $0.contains("3 images could not be scored") }, "\(lines)")
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any]
        #expect((report?["rows"] as? [Any])?.count == 1)
    }

    @Test func missingOrWrongWeightsAreOneLine() throws {
        let (restored, reference) = try folders()
        defer { for d in [restored, reference] { try? FileManager.default.removeItem(at: d) } }
        let missing = try run(["eval", "--restored", restored.path, "--reference", reference.path, "--metrics", "lpips",
                               "--lpips-weights", "/nonexistent/vgg16.pth"])
        #expect(missing.status != 0 && missing.stderr.contains("LPIPS: /nonexistent/vgg16.pth: no such file"), "\(missing.stderr)")
        // A real checkpoint of another network: the key it lacks, named.
        let wrong = try run(["eval", "--restored", restored.path, "--reference", reference.path, "--metrics", "deg",
                             "--arcface-weights", cliFixtures.appendingPathComponent("gfpgan_v1.4_layout.pth").path])
        #expect(wrong.status != 0 && wrong.stderr.hasPrefix("facerestore: Deg.: ") && wrong.stderr.split(separator: "\n").count == 1,
                "\(wrong.stderr)")
        let noWeights = try run(["eval", "--restored", restored.path, "--reference", reference.path, "--metrics", "lmd"])
        #expect(noWeights.status != 0 && noWeights.stderr.contains("LMD needs its weights file"), "\(noWeights.stderr)")
        let fid = try run(["eval", "--restored", restored.path, "--metrics", "fid", "--inception-weights", "/nonexistent.pth"])
        #expect(fid.status != 0 && fid.stderr.contains("FID needs --reference or --fid-stats"), "\(fid.stderr)")
    }
}
