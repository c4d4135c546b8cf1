// CodeFormer through the library end to end, with weights drawn here in the official layout (the
// key list of scripts/make_codeformer_fixtures.py; no CodeFormer file can be committed or fetched):
// the model is recognized from its keys, its licence is shown, `-w` means its fidelity weight, and a
// small gray photo goes through CodeFormer's recipe (enlarged to 512 px on its short side first)
// and, with `keepGray`, comes out gray. Network parity is CodeFormerParityTests' business.

import FaceRestore
import Foundation
import Testing

/// A CodeFormer checkpoint with seeded random weights (He-scaled convolutions and linears, unit
/// norms, a normal codebook) written as safetensors; the same file for every test in a run.
let randomCodeFormer: String? = {
    guard let listing = try? String(contentsOfFile: fixture("codeformer_keys.txt"), encoding: .utf8) else { return nil }
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    func normal() -> Float {
        // xorshift64* uniforms through Box–Muller: reproducible, no dependency on a library RNG.
        func uniform() -> Double {
            state ^= state >> 12; state ^= state << 25; state ^= state >> 27
            return (Double((state &* 0x2545_F491_4F6C_DD1D) >> 11) + 0.5) / Double(1 << 53)
        }
        return Float((-2 * log(uniform())).squareRoot() * cos(2 * .pi * uniform()))
    }
    var tensors: [(String, WeightTensor)] = []
    for line in listing.split(separator: "\n") {
        guard let open = line.firstIndex(of: "(") else { return nil }
        let name = String(line[..<open].dropLast())
        let shape = line[line.index(after: open)...].dropLast().split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let count = shape.reduce(1, *)
        let values: [Float]
        if shape.count == 1 {
            values = [Float](repeating: name.hasSuffix(".weight") ? 1 : 0, count: count)
        } else if name == "position_emb" || name.hasPrefix("quantize.") {
            values = (0..<count).map { _ in normal() * (name == "position_emb" ? 0.02 : 1) }
        } else {
            let fanIn = shape.dropFirst().reduce(1, *)
            let scale = (1 / Float(fanIn)).squareRoot()
            values = (0..<count).map { _ in normal() * scale }
        }
        tensors.append((name, WeightTensor(shape: shape, floats: values)))
    }
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("frlib-codeformer-\(getpid()).safetensors").path
    guard (try? SafeTensors.write(tensors, to: path)) != nil else { return nil }
    return path
}()

@Suite(.enabled(if: detectorFile != nil, "no RetinaFace weights"))
struct CodeFormerPhoto {
    func restorer(_ path: String) throws -> Restorer {
        var c = Restorer.Configuration(model: .file(path))
        c.detector = .file(detectorFile!)
        c.useParser = false
        c.measureIdentity = false
        c.threads = 2
        return try Restorer(c, store: ModelStore(directory: try temporaryFolder("empty").path))
    }

    @Test func aSmallGrayPhotoThroughCodeFormersRecipe() throws {
        let path = try #require(randomCodeFormer)
        let restorer = try restorer(path)
        #expect(restorer.modelName == "CodeFormer" && restorer.recipe == .codeFormer)
        #expect(restorer.licenseNotice?.contains("S-Lab") == true, "the S-Lab terms are shown when CodeFormer loads")
        #expect(restorer.takesFidelity)
        let upstream = restorer.applyingUpstreamWeight(0.7, to: PhotoOptions())
        #expect(upstream.fidelity == 0.7 && upstream.weight == 1, "-w is CodeFormer's fidelity weight")

        // Grace Hopper, gray, 290×340: under CodeFormer's 512 px minimum.
        let colour = try ImageIO.read(path: repoRoot.appendingPathComponent("examples/grace_hopper.jpg").path).image
        let small = colour.resizedLinear(width: 340 * colour.width / colour.height, height: 340).grayscaled()
        let folder = try temporaryFolder("codeformer")
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("gray.png").path
        try ImageIO.write(small, to: file)

        let result = try restorer.restore(file: file, options: PhotoOptions(fidelity: 0.5, keepGray: true))
        let enlarged = try #require(small.enlargedLinear(by: 512.0 / Double(min(small.width, small.height))))
        let image = try #require(result.image)
        #expect(min(enlarged.width, enlarged.height) == 512)
        #expect(image.width == 2 * enlarged.width && image.height == 2 * enlarged.height, "enlarged to 512, then ×2")
        #expect(result.faces.count == 1)
        #expect(result.photo?.grayInput == true && result.photo?.grayOutput == true)
        var gray = true
        for i in stride(from: 0, to: image.pixels.count, by: 3) where image.pixels[i] != image.pixels[i + 1] || image.pixels[i] != image.pixels[i + 2] {
            gray = false
            break
        }
        #expect(gray, "--keep-gray: a gray photo comes out gray")
        // The face was restored: the output differs from the enlarged photo inside the face box.
        let face = try #require(result.faces.first)
        let restoredFace = face.restored
        #expect(restoredFace.width == 512 && restoredFace.pixels != face.cropped.pixels)
    }

    /// `--face-upsample`: each restored face goes through Real-ESRGAN (here the tiny random x2
    /// RRDBNet) and is pasted at `upscale`× its side with facelib's adjusted inverse affine. The
    /// photo (against its background before pasting) changes only where the face is pasted; pixel parity with facelib is
    /// scripts/parity_codeformer_pipeline.py's `_faceup` cases.
    @Test func faceUpsamplingPastesTheUpsampledFace() throws {
        let path = try #require(randomCodeFormer)
        let photo = repoRoot.appendingPathComponent("examples/grace_hopper.jpg").path
        var c = Restorer.Configuration(model: .file(path))
        c.detector = .file(detectorFile!)
        c.useParser = false
        c.measureIdentity = false
        c.threads = 2
        c.faceUpsampling = true
        c.generalModel = .file(fixture("realesrgan_rrdb_x2_tiny.pth"))
        let upsampling = try Restorer(c, store: ModelStore(directory: try temporaryFolder("empty").path))
        let result = try upsampling.restore(file: photo, options: PhotoOptions(upscale: 2, fidelity: 0.5))
        let (a, b) = (try #require(result.photo?.background), try #require(result.image))
        let face = try #require(result.faces.first)
        #expect(result.faces.count == 1 && face.restored.width == 512)
        let up = try #require(face.upsampled)
        #expect(up.width == 1024 && up.height == 1024)
        #expect(result.timings.faceUpsampling > 0)
        #expect(a.width == b.width && a.height == b.height)
        // Every changed pixel lies in the pasted face's square (its warped corners plus the blur's reach).
        let corners = [(0.0, 0.0), (512.0, 0.0), (0.0, 512.0), (512.0, 512.0)].map { face.inverseAffine.apply((x: $0.0, y: $0.1)) }
        let (x0, x1) = (corners.map(\.x).min()! - 8, corners.map(\.x).max()! + 8)
        let (y0, y1) = (corners.map(\.y).min()! - 8, corners.map(\.y).max()! + 8)
        var changed = 0, outside = 0
        for y in 0..<a.height {
            for x in 0..<a.width {
                let i = (y * a.width + x) * 3
                guard a.pixels[i..<(i + 3)] != b.pixels[i..<(i + 3)] else { continue }
                changed += 1
                if Double(x) < x0 || Double(x) > x1 || Double(y) < y0 || Double(y) > y1 { outside += 1 }
            }
        }
        #expect(changed > 50_000, "the upsampled face is pasted (\(changed) pixels changed)")
        #expect(outside == 0, "\(outside) pixels changed outside the face's square")
    }

    @Test func faceUpsamplingOutsideCodeFormersPipelineIsOneLine() throws {
        var c = Restorer.Configuration(model: .file(fixture("gfpgan_clean_tiny.pth")))
        c.detector = .file(detectorFile!)
        c.faceUpsampling = true
        c.measureIdentity = false
        let store = ModelStore(directory: try temporaryFolder("empty").path)
        #expect(throws: PipelineError.noFaceUpsampling(recipe: .facexlib)) { _ = try Restorer(c, store: store) }
        #expect("\(PipelineError.noFaceUpsampling(recipe: .facexlib))".contains("face upsampling"))
        let path = try #require(randomCodeFormer)
        c.model = .file(path)
        c.aligned = true
        #expect { _ = try Restorer(c, store: store) } throws: { "\($0)".contains("face upsampling") }
    }

    @Test func notACodeFormerFileIsOneLine() throws {
        let folder = try temporaryFolder("codeformer-bad")
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("broken.safetensors").path
        try SafeTensors.write([("position_emb", WeightTensor(shape: [256, 512], floats: [Float](repeating: 0, count: 256 * 512))),
                               ("quantize.embedding.weight", WeightTensor(shape: [1024, 256], floats: [Float](repeating: 0, count: 1024 * 256)))],
                              to: file)
        #expect {
            _ = try restorer(file)
        } throws: { error in
            let text = "\(error)"
            return text.contains(file) && !text.contains("\n")
        }
    }
}
