// GPEN's FullGenerator against the reference forward (yangxy/GPEN `face_model/gpen_model.py`,
// commit 2c73670, CPU paths) on two small random-weight configurations saved as GPEN saves its
// models (scripts/make_fixtures.py `make_gpen`).

import FaceRestoreEngine
@testable import FaceRestoreModels
import FaceRestoreWeights
import Foundation
import Testing

@Suite struct GPENParity {
    let ctx = ComputeContext(threads: 2)

    func check(_ name: String, expected: GPENConfig) throws {
        let net = try GPEN(path: modelFixtures.appendingPathComponent("\(name).pth").path, context: ctx)
        #expect(net.config == expected)
        let io = try SafeTensors.read(path: modelFixtures.appendingPathComponent("gpen_tiny_io.safetensors").path)
        let x = io["\(name).x"]!, y = io["\(name).y"]!
        let input = Tensor(shape: x.shape, values: x.floats())
        let out = try ctx.array(net(input, ctx))
        let reference = y.floats()
        let maxAbs = zip(out, reference).map { abs($0 - $1) }.max()!
        if ProcessInfo.processInfo.environment["FACERESTORE_PARITY_REPORT"] != nil {
            print("parity \(name) max_abs \(maxAbs) range \(reference.min()!)…\(reference.max()!)")
        }
        #expect(maxAbs <= 1e-4, "max abs error \(maxAbs) (output range \(reference.min()!)…\(reference.max()!))")
        #expect(try ctx.array(net(input, ctx)) == out, "same input, same bits")
    }

    @Test func tiny64MatchesReference() throws {
        try check("gpen_tiny64", expected: GPENConfig(size: 64, styleDim: 32, mappingLayers: 8, channelMultiplier: 1, narrow: 1.0 / 32))
    }

    @Test func tiny128WithMultiplier2MatchesReference() throws {
        try check("gpen_tiny128", expected: GPENConfig(size: 128, styleDim: 32, mappingLayers: 8, channelMultiplier: 2, narrow: 1.0 / 32))
    }

    /// The official layouts (keys and shapes of GPEN-BFR-512 and -256, written from the reference
    /// classes) give GPEN's published configurations, and every key is read.
    @Test func officialLayoutsGiveThePublishedConfigurations() throws {
        #expect(try GPENConfig.detect(layout("gpen_512"), file: "GPEN-BFR-512.pth") == GPENConfig(size: 512, channelMultiplier: 2, narrow: 1))
        let sd256 = try layout("gpen_256")
        #expect(try GPENConfig.detect(sd256, file: "GPEN-BFR-256.pth") == GPENConfig(size: 256, channelMultiplier: 1, narrow: 0.5))
        #expect(try GPEN(stateDict: sd256, file: "GPEN-BFR-256.pth", context: ctx).config.size == 256)
    }

    /// Strict loading: a missing key, a wrong shape, an extra key and a changed blur kernel each
    /// throw one line naming the key.
    @Test func strictLoadingNamesTheKey() throws {
        let path = modelFixtures.appendingPathComponent("gpen_tiny64.pth").path
        let (sd, _) = try WeightsFile.load(path: path)
        func load(_ edit: (inout [String: WeightTensor]) -> Void) -> String {
            var tensors = sd.tensors
            edit(&tensors)
            do {
                _ = try GPEN(stateDict: StateDict(names: tensors.keys.sorted(), tensors: tensors), file: "m.pth", context: ctx)
                return "loaded"
            } catch { return "\(error)" }
        }
        #expect(load { $0["generator.to_rgbs.0.bias"] = nil }.contains("generator.to_rgbs.0.bias"))
        #expect(load { $0["generator.convs.1.noise.weight"] = nil } == "m.pth: missing tensor 'generator.convs.1.noise.weight' (expected shape [1])")
        #expect(load { $0["extra.weight"] = $0["generator.input.input"] }.contains("unexpected tensor(s), e.g. 'extra.weight'"))
        #expect(load { $0["generator.style.3.bias"] = $0["generator.input.input"] }.contains("tensor 'generator.style.3.bias' has shape [1, 16, 4, 4], the model expects [32]"))
        #expect(load { $0["ecd1.0.0.kernel"] = $0["generator.to_rgbs.0.upsample.kernel"] }.contains("'ecd1.0.0.kernel' is not the [1,3,3,1] blur kernel"))
    }

    @Test func otherArchitecturesAreRefusedByName() throws {
        let gfpgan = modelFixtures.appendingPathComponent("gfpgan_clean_tiny.pth").path
        #expect(throws: ModelError.self) { try GPEN(path: gfpgan, context: ctx) }
        do { _ = try GPEN(path: gfpgan, context: ctx) } catch {
            #expect("\(error)".contains("this is GFPGANv1Clean"), "\(error)")
            #expect("\(error)".contains("not GPEN"), "\(error)")
        }
    }
}
