// `facerestore detect` and `facerestore models`: what a user sees (JSON shape, the registry, a
// download that cannot reach its URL).

import FaceRestore
import Foundation
import Testing

@Suite struct DetectAndModelsCommands {
    @Test(.enabled(if: sharedDetector != nil, "../shared/weights is absent"))
    func detectPrintsFacesAsJSON() throws {
        let r = try run(["detect", repoRoot.appendingPathComponent("examples/group.jpg").path, "--json", "--detector", sharedDetector!])
        #expect(r.status == 0, "\(r.stderr)")
        let reports = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        let faces = try #require(reports.first?["faces"] as? [[String: Any]])
        #expect(faces.count == 2)
        #expect((faces[0]["landmarks"] as? [[Double]])?.count == 5)
        #expect((faces[0]["box"] as? [Double])?.count == 4)
        #expect(reports.first?["width"] as? Int == 700)
    }

    @Test(.enabled(if: sharedDetector != nil, "../shared/weights is absent"))
    func detectReportsBadFilesInOneLine() throws {
        let r = try run(["detect", "/nonexistent/photo.jpg", "--detector", sharedDetector!])
        #expect(r.status == 1)
        #expect(r.stderr.contains("/nonexistent/photo.jpg"))
        #expect(r.stderr.split(separator: "\n").count == 1)
    }

    @Test func modelsListAndPathUseTheCacheFolder() throws {
        let home = try temporaryFolder("models-home")
        defer { try? FileManager.default.removeItem(at: home) }
        let list = try run(["models", "list"], environment: ["FACERESTORE_HOME": home.path])
        #expect(list.status == 0)
        #expect(list.stdout.contains("models folder: \(home.path)/models"))
        #expect(list.stdout.contains("GFPGANv1.4.pth — not installed"))
        let path = try run(["models", "path", "v1.4"], environment: ["FACERESTORE_HOME": home.path])
        #expect(path.stdout == "\(home.path)/models/GFPGANv1.4.pth\n")
    }

    @Test func fetchThatCannotConnectSaysWhereToPutTheFile() throws {
        let home = try temporaryFolder("fetch-home")
        defer { try? FileManager.default.removeItem(at: home) }
        // An unroutable proxy makes the download fail fast and offline-independent.
        let r = try run(["models", "fetch", "parsenet"], environment: [
            "FACERESTORE_HOME": home.path, "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("put it at \(home.path)/models/parsing_parsenet.pth"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: home.path + "/models/parsing_parsenet.pth"))
        #expect(!FileManager.default.fileExists(atPath: home.path + "/models/parsing_parsenet.pth.part"))
    }

    /// A model file of the right layout whose weights are damaged (NaN) passes every check but
    /// the probe run: `models verify` names it and exits 1; the intact file is ok.
    @Test func verifyRunsTheNetworkAndCatchesDamagedWeights() throws {
        let home = try temporaryFolder("verify-home")
        defer { try? FileManager.default.removeItem(at: home) }
        try FileManager.default.createDirectory(atPath: home.path + "/models", withIntermediateDirectories: true)
        let tiny = modelsFixtures.appendingPathComponent("gfpgan_clean_tiny.pth").path
        let file = home.path + "/models/GFPGANCleanv1-NoCE-C2.pth"   // v1.2: no published digest
        try FileManager.default.copyItem(atPath: tiny, toPath: file)
        let intact = ModelStore(directory: home.path + "/models")
        try intact.probe(file, kind: .faceRestoration)

        let (sd, _) = try WeightsFile.load(path: tiny)
        let damaged = sd.names.map { name -> (String, WeightTensor) in
            let t = sd[name]!
            guard name == "conv_body_first.weight" else { return (name, t) }
            var values = t.floats()
            values[values.count / 2] = .nan
            return (name, WeightTensor(shape: t.shape, floats: values))
        }
        try FileManager.default.removeItem(atPath: file)
        try SafeTensors.write(damaged, to: file)
        #expect(throws: ModelStoreError.nonFinite(path: file)) { try intact.probe(file, kind: .faceRestoration) }
        let r = try run(["models", "verify"], environment: ["FACERESTORE_HOME": home.path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("\(file): the network gives NaN or infinite outputs on a probe image"), "\(r.stderr)")
    }
}
