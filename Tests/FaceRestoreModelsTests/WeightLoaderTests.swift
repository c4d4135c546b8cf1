// How the loader hands weights to layers: float32 tensors of a memory-mapped zip checkpoint are
// read in place (WeightScope.swift `takeTensor`), everything else is copied.

@testable import FaceRestoreEngine
@testable import FaceRestoreModels
import FaceRestoreWeights
import Foundation
import Testing

@Suite struct WeightLoading {
    func fixture(_ name: String) throws -> StateDict {
        let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent(name)
        return try WeightsFile.load(path: url.path).0
    }

    @Test func mappedFloat32WeightsAreReadInPlace() throws {
        let sd = try fixture("gfpgan_clean_tiny.pth")
        let key = try #require(sd.names.first { sd[$0]!.dtype == .float32 && sd[$0]!.count >= 64 })
        let stored = try #require(sd[key])
        let (pointer, _) = try #require(stored.alignedFloat32, "a zip checkpoint's storages are 64-byte aligned")
        let loader = WeightLoader(sd, file: "gfpgan_clean_tiny.pth")
        let inPlace = try loader.takeTensor(key, shape: stored.shape)
        #expect(UnsafeRawPointer(inPlace.storage.pointer) == pointer)
        let scaled = try loader.takeTensor(key, shape: stored.shape, scale: 2)
        #expect(UnsafeRawPointer(scaled.storage.pointer) != pointer)
        let want = stored.floats()
        #expect(inPlace.withPlainValues { Array($0) } == want)
        #expect(scaled.withPlainValues { Array($0) } == want.map { $0 * 2 })
        // `finish` hands the file's pages back; the tensor reads them again from the file.
        _ = try loader.finish(deliberatelyUnused: [""])
        #expect(inPlace.withPlainValues { Array($0) } == want)
    }

    @Test func otherTensorsAreCopied() throws {
        // A legacy (pre-1.6) checkpoint's storages are not aligned; half, bfloat16 and strided
        // views (view.t, a transpose) are converted. Every copy is 64-byte aligned.
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("FaceRestoreWeightsTests/Fixtures/plain_legacy.pth")
        let sd = try WeightsFile.load(path: url.path).0
        var copied = 0
        for key in sd.names {
            let t = sd[key]!
            guard t.dtype.isFloatingPoint, !t.shape.isEmpty else { continue }
            let tensor = try WeightLoader(sd, file: "plain_legacy.pth").takeTensor(key, shape: t.shape)
            if let (pointer, _) = t.alignedFloat32 {
                #expect(UnsafeRawPointer(tensor.storage.pointer) == pointer)
            } else {
                copied += 1
                #expect(Int(bitPattern: tensor.storage.pointer) % 64 == 0)
            }
            #expect(tensor.withPlainValues { Array($0) } == t.floats(), "\(key)")
        }
        #expect(sd["half"]?.alignedFloat32 == nil && sd["bf16"]?.alignedFloat32 == nil && sd["view.t"]?.alignedFloat32 == nil)
        #expect(copied >= 3)
    }
}
