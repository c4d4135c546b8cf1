// facerestore-bench: speed figures, always next to the reference's in the same run.
//
//   facerestore-bench conv [--threads 2] [--seconds 0.5] [--reference PYTHON]
//   facerestore-bench dense [--threads 2] [--seconds S] [--size 210] [--shapes 128x64,…]   (ESRGAN dense-block convs, or other
//                         3×3 convs: oneDNN vs our fused Winograd)
//   facerestore-bench dlib --model dlib_face_recognition_resnet_model_v1.dat [--chip CHIP.rgb] [--runs 20] [--threads 1]
//                         (one ID-dlib face descriptor)
//
// `conv` times every distinct convolution shape of GFPGAN v1.4 (U-Net, SFT conditions and the
// StyleGAN2 decoder's 3×3 and 1×1 convs, 3–512 channels, 4²–512²) through our oneDNN layer,
// and reports GFLOPS, % of this machine's measured fp32 FMA peak, % of the nominal 520 GFLOPS
// (2 Zen5 cores at boost, ../shared/docs/platform.md) and, with --reference, PyTorch's time for
// the same shape (scripts/bench_reference_conv.py) and the speed ratio.

import CPeak
import FaceRestoreEngine
import FaceRestoreModels
import FaceRestorePipeline
import FaceRestoreWeights
import Foundation

struct ConvShape { let cin: Int, cout: Int, k: Int, stride: Int, hw: Int; let role: String }

/// The distinct conv shapes of GFPGANv1Clean (out 512, channel multiplier 2) at inference, with
/// the input spatial size. The decoder's modulated convs run as plain convs on modulated inputs.
let gfpganV14Shapes: [ConvShape] = [
    ConvShape(cin: 3, cout: 32, k: 1, stride: 1, hw: 512, role: "conv_body_first"),
    ConvShape(cin: 32, cout: 32, k: 3, stride: 1, hw: 512, role: "down0.conv1"),
    ConvShape(cin: 32, cout: 64, k: 3, stride: 1, hw: 256, role: "down0.conv2"),
    ConvShape(cin: 32, cout: 64, k: 1, stride: 1, hw: 256, role: "down0.skip"),
    ConvShape(cin: 64, cout: 64, k: 3, stride: 1, hw: 256, role: "down1.conv1"),
    ConvShape(cin: 64, cout: 128, k: 3, stride: 1, hw: 128, role: "down1.conv2"),
    ConvShape(cin: 128, cout: 128, k: 3, stride: 1, hw: 128, role: "down2.conv1 / cond128"),
    ConvShape(cin: 128, cout: 256, k: 3, stride: 1, hw: 64, role: "down2.conv2"),
    ConvShape(cin: 256, cout: 256, k: 3, stride: 1, hw: 64, role: "down3.conv1 / cond64"),
    ConvShape(cin: 256, cout: 256, k: 3, stride: 1, hw: 32, role: "down.conv2 32"),
    ConvShape(cin: 256, cout: 256, k: 3, stride: 1, hw: 16, role: "down.conv2 16"),
    ConvShape(cin: 256, cout: 256, k: 3, stride: 1, hw: 8, role: "down.conv2 8"),
    ConvShape(cin: 256, cout: 256, k: 3, stride: 1, hw: 4, role: "final_conv"),
    ConvShape(cin: 256, cout: 128, k: 3, stride: 1, hw: 128, role: "up4.conv2"),
    ConvShape(cin: 128, cout: 64, k: 3, stride: 1, hw: 256, role: "up5.conv2"),
    ConvShape(cin: 64, cout: 32, k: 3, stride: 1, hw: 512, role: "up6.conv2"),
    ConvShape(cin: 32, cout: 32, k: 3, stride: 1, hw: 512, role: "cond512"),
    ConvShape(cin: 512, cout: 512, k: 3, stride: 1, hw: 4, role: "style_conv1"),
    ConvShape(cin: 512, cout: 512, k: 3, stride: 1, hw: 16, role: "style_convs 16"),
    ConvShape(cin: 512, cout: 512, k: 3, stride: 1, hw: 32, role: "style_convs 32"),
    ConvShape(cin: 512, cout: 512, k: 3, stride: 1, hw: 64, role: "style_convs 64"),
    ConvShape(cin: 512, cout: 256, k: 3, stride: 1, hw: 128, role: "style_convs 128 (up)"),
    ConvShape(cin: 256, cout: 256, k: 3, stride: 1, hw: 128, role: "style_convs 128"),
    ConvShape(cin: 256, cout: 128, k: 3, stride: 1, hw: 256, role: "style_convs 256 (up)"),
    ConvShape(cin: 128, cout: 128, k: 3, stride: 1, hw: 256, role: "style_convs 256"),
    ConvShape(cin: 128, cout: 64, k: 3, stride: 1, hw: 512, role: "style_convs 512 (up)"),
    ConvShape(cin: 64, cout: 64, k: 3, stride: 1, hw: 512, role: "style_convs 512"),
    ConvShape(cin: 512, cout: 3, k: 1, stride: 1, hw: 64, role: "to_rgb 64"),
    ConvShape(cin: 64, cout: 3, k: 1, stride: 1, hw: 512, role: "to_rgb 512"),
]

func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s : s + String(repeating: " ", count: width - s.count) }

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

/// Median wall time in seconds of `body` over at least 3 runs or `seconds` of runs (after a warm-up).
func median(seconds: Double, _ body: () throws -> Void) rethrows -> Double {
    try body()
    var times: [Double] = []
    let deadline = now() + seconds
    while times.count < 3 || (now() < deadline && times.count < 50) {
        let t0 = now()
        try body()
        times.append(now() - t0)
    }
    times.sort()
    return times[times.count / 2]
}

/// Measured fp32 FMA peak of `threads` cores in GFLOPS (AVX-512, 16 lanes × 2 flops per FMA).
func measuredPeak(threads: Int) -> Double? {
    guard cpeak_has_avx512() != 0 else { return nil }
    let iterations: Int64 = 20_000_000
    var best = 0.0
    for _ in 0..<3 {
        let t0 = now()
        DispatchQueue.concurrentPerform(iterations: threads) { _ in _ = cpeak_fma_avx512(iterations) }
        let dt = now() - t0
        best = max(best, Double(threads) * Double(iterations) * 24 * 16 * 2 / dt / 1e9)
    }
    return best
}

func referenceTimes(python: String, shapes: [ConvShape], threads: Int, seconds: Double) -> [Double]? {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/bench_reference_conv.py").path
    let p = Process()
    p.executableURL = URL(fileURLWithPath: python)
    p.arguments = [script]
    var env = ProcessInfo.processInfo.environment
    env["OMP_NUM_THREADS"] = String(threads)
    p.environment = env
    let input = Pipe(), output = Pipe()
    p.standardInput = input
    p.standardOutput = output
    p.standardError = FileHandle.nullDevice
    let req: [String: Any] = ["threads": threads, "seconds": seconds,
                              "shapes": shapes.map { [$0.cin, $0.cout, $0.k, $0.stride, $0.hw] }]
    do {
        try p.run()
        input.fileHandleForWriting.write(try JSONSerialization.data(withJSONObject: req))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0, let json = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let results = json["results"] as? [Double] else { return nil }
        print("reference: torch \(json["torch"] ?? "?") conv2d, \(threads) threads, best of NCHW and channels_last")
        return results
    } catch {
        return nil
    }
}

func benchConv(threads: Int, seconds: Double, reference: String?) throws {
    let ctx = ComputeContext(threads: threads, winograd: !args.contains("--no-winograd"))
    let nominal = 520.0
    let peak = measuredPeak(threads: threads)
    print("threads: \(threads)")
    if let peak { print(String(format: "measured fp32 FMA peak (AVX-512, %d threads): %.0f GFLOPS; nominal (2× Zen5 at boost): %.0f GFLOPS", threads, peak, nominal)) }
    let refs = reference.flatMap { referenceTimes(python: $0, shapes: gfpganV14Shapes, threads: threads, seconds: seconds) }
    if reference != nil && refs == nil { print("reference: could not run \(reference!) (see ../shared/reference/setup.sh)") }
    print("")
    print(pad("layer", 22) + " " + pad("shape", 20) + "        ms   GFLOPS   %peak    %520"
          + (refs != nil ? "   torch ms  speed-up" : "") + "  kernel")
    var goalShares: [Double] = []
    var totalOurs = 0.0, totalRef = 0.0
    var rng = SystemRandomNumberGenerator()
    for (i, s) in gfpganV14Shapes.enumerated() {
        let weights = (0..<(s.cout * s.cin * s.k * s.k)).map { _ in Float.random(in: -0.05...0.05, using: &rng) }
        let conv = try Conv2d(weight: weights, shape: [s.cout, s.cin, s.k, s.k], bias: [Float](repeating: 0, count: s.cout),
                              stride: s.stride, padding: Padding2D(s.k / 2), hint: (s.hw, s.hw), context: ctx)
        // Activations arrive in the layout the previous conv produced (channels-last).
        let x = try ctx.channelsLast(Tensor(shape: [1, s.cin, s.hw, s.hw], repeating: 0.5))
        let dt = try median(seconds: seconds) { _ = try conv(x, ctx) }
        let outHW = (s.hw + 2 * (s.k / 2) - s.k) / s.stride + 1
        let gflop = 2.0 * Double(s.cout * s.cin * s.k * s.k * outHW * outHW) / 1e9
        let gflops = gflop / dt
        let pct = peak.map { 100 * gflops / $0 } ?? .nan
        var line = pad(s.role, 22) + " " + pad("\(s.cin)→\(s.cout) \(s.k)×\(s.k) @\(s.hw)²", 20)
            + String(format: " %9.3f %8.1f %6.1f%% %6.1f%%", dt * 1000, gflops, pct, 100 * gflops / nominal)
        if let refs {
            line += String(format: " %10.3f %8.2f×", refs[i], refs[i] / (dt * 1000))
            totalRef += refs[i]
        }
        totalOurs += dt * 1000
        line += "  " + (try conv.implementation(for: x, ctx))
        print(line)
        if s.k == 3, min(s.cin, s.cout) >= 128, (64...256).contains(s.hw) { goalShares.append(pct) }
    }
    print("")
    if !goalShares.isEmpty, peak != nil {
        print(String(format: "3×3 convs with ≥128 channels at 64²–256²: %.1f%%–%.1f%% of measured peak (mean %.1f%%)",
                     goalShares.min()!, goalShares.max()!, goalShares.reduce(0, +) / Double(goalShares.count)))
    }
    if totalRef > 0 {
        print(String(format: "sum over shapes: ours %.1f ms, torch %.1f ms, speed-up %.2f×", totalOurs, totalRef, totalRef / totalOurs))
    }
}

/// ESRGAN dense-block convolutions (x2plus body: 210², 64 features, growth 32) on oneDNN's Winograd
/// kernel and on our fused one, alternating, with nChw16c input as in the network.
func benchDenseConvs(threads: Int, seconds: Double, size: Int) throws {
    let ctx = ComputeContext(threads: threads)
    print("threads: \(threads), \(size)², median of each over \(seconds) s, rounds alternating")
    print(pad("shape", 12) + "  oneDNN ms (GF/s-eq)   fused ms (GF/s-eq)   ratio")
    var total = (0.0, 0.0)
    // `--shapes 128x64,256x256`: other in→out pairs (the face models' 3×3 convs) instead of the dense block's.
    let shapes = option("--shapes").map { list in
        list.split(separator: ",").compactMap { pair -> (Int, Int)? in
            let io = pair.split(separator: "x").compactMap { Int($0) }
            return io.count == 2 ? (io[0], io[1]) : nil
        }
    } ?? [(64, 32), (96, 32), (128, 32), (160, 32), (192, 64)] + (args.contains("--with-64") ? [(64, 64)] : [])
    for (cin, cout) in shapes {
        let w = (0..<(cout * cin * 9)).map { Float(($0 * 7919) % 1000) / 1000 * 0.06 - 0.03 }
        let b = (0..<cout).map { Float($0) / Float(cout) * 0.1 }
        let post: [PostOp] = cout == 32 ? [.leakyReLU(0.2)] : []
        let onednn = try Conv2d(weight: w, shape: [cout, cin, 3, 3], bias: b, padding: Padding2D(1), postOps: post, hint: (size, size),
                                fusedWinograd: false, context: ctx)
        let fused = try Conv2d(weight: w, shape: [cout, cin, 3, 3], bias: b, padding: Padding2D(1), postOps: post, hint: (size, size),
                               fusedWinograd: true, context: ctx)
        // The input as the network has it: nChw16c, here from a oneDNN Winograd conv.
        let producer = try Conv2d(weight: (0..<(cin * 64 * 9)).map { Float(($0 * 31) % 100) / 4000 }, shape: [cin, 64, 3, 3],
                                  padding: Padding2D(1), hint: (size, size), context: ctx)
        let x = try producer(Tensor(shape: [1, 64, size, size], fill: { p in
            for i in p.indices { p[i] = Float((i * 104729) % 2000) / 1000 - 1 }
        }), ctx)
        var a: [Double] = [], f: [Double] = []
        for _ in 0..<3 {
            a.append(try median(seconds: seconds / 3) { _ = try onednn(x, ctx) })
            f.append(try median(seconds: seconds / 3) { _ = try fused(x, ctx) })
        }
        let (ta, tf) = (a.sorted()[1], f.sorted()[1])
        total = (total.0 + ta, total.1 + tf)
        let gf = 2.0 * Double(cin * cout * 9 * size * size) / 1e9
        print(pad("\(cin)→\(cout)", 12) + String(format: "  %8.2f (%5.0f)       %8.2f (%5.0f)      %.2f×", ta * 1e3, gf / ta, tf * 1e3, gf / tf, ta / tf)
              + "  " + (try onednn.implementation(for: x, ctx)))
    }
    let label = option("--shapes") == nil ? "dense block (five convs)" : "all \(shapes.count) shapes"
    print(label + String(format: ": oneDNN %.2f ms, fused %.2f ms, %.2f×", total.0 * 1e3, total.1 * 1e3, total.0 / total.1))
}

/// Times our face model forward (GFPGAN or GPEN, read from the checkpoint) on the input stored in
/// `io` (key "x") and writes the output (key "y") to `output`, for scripts/parity_gfpgan.py and
/// scripts/parity_gpen.py, which time the reference in the same run.
func benchFaceModel(model: String, io: String, output: String?, threads: Int, runs: Int, precision: Precision) throws {
    let ctx = ComputeContext(threads: threads, precision: precision, winograd: !args.contains("--no-winograd"))
    let t0 = now()
    let net: (Tensor, ComputeContext) throws -> Tensor
    switch try FaceRestorer(modelPath: model, context: ctx).network {
    case .gfpgan(let gfpgan): net = { try gfpgan($0, $1) }
    case .gpen(let gpen): net = { try gpen($0, $1) }
    case .restoreFormer(let rf): net = { try rf.forward($0, $1).image }
    case .codeFormer(let cf):
        let (w, adain) = cf.call(fidelity: option("--fidelity").flatMap(Float.init) ?? FaceRestorer.defaultFidelity)
        net = { try cf.forward($0, w: w, adain: adain, $1).image }
    }
    let loadTime = now() - t0
    let afterLoad = peakRSSMegabytes()
    let inputs = try SafeTensors.read(path: io)
    guard let x = inputs["x"] else { throw ModelError.invalidInput("\(io): no tensor 'x'") }
    let input = Tensor(shape: x.shape, values: x.floats())
    let (firstCall, times, result) = try timeForward(runs: runs) { try net(input, ctx) }
    print(String(format: "ours: load %.2f s, first forward %.3f s, forward median %.3f s (min %.3f s, %d runs, %d threads), peak RSS %.0f MB (%.0f MB after load)",
                 loadTime, firstCall, times[times.count / 2], times[0], times.count, threads, peakRSSMegabytes(), afterLoad))
    if let output {
        try SafeTensors.write([("y", WeightTensor(shape: result.shape, floats: try ctx.array(result)))], to: output)
    }
}

/// Times one Real-ESRGAN forward on a `size`² random tile (seeded, in [0, 1]); scripts/bench_realesrgan.py
/// times PyTorch on the same tile shape in the same run.
func benchRealESRGAN(model: String, size: Int, threads: Int, runs: Int, precision: Precision) throws {
    let ctx = ComputeContext(threads: threads, precision: precision, winograd: !args.contains("--no-winograd"))
    let t0 = now()
    let up = try RealESRGANer(modelPath: model, tile: 0, context: ctx)
    let loadTime = now() - t0
    let x = Tensor(shape: [1, 3, size, size], values: seededUniform(3 * size * size, seed: 12345, in: 0..<1))
    let (first, times, _) = try timeForward(runs: runs) { try up.forward(x, ctx) }
    print(String(format: "ours: %@, %d² tile: load %.2f s, first forward %.3f s, forward median %.3f s (min %.3f s, %d runs, %d threads), peak RSS %.0f MB",
                 up.title, size, loadTime, first, times[times.count / 2], times[0], times.count, threads, peakRSSMegabytes()))
}

/// Times ParseNet (facexlib's face parser, run by the paste-back on every restored face) on a
/// seeded 512² input.
func benchParseNet(model: String, threads: Int, runs: Int) throws {
    let ctx = ComputeContext(threads: threads, winograd: !args.contains("--no-winograd"))
    let t0 = now()
    let net = try ParseNet(path: model, context: ctx)
    let loadTime = now() - t0
    let x = Tensor(shape: [1, 3, 512, 512], values: seededUniform(3 * 512 * 512, seed: 99, in: -1..<1))
    let (first, times, _) = try timeForward(runs: runs) { try net.logits(x, ctx) }
    print(String(format: "ours: ParseNet 512²: load %.2f s, first forward %.3f s, forward median %.3f s (min %.3f s, %d runs, %d threads), peak RSS %.0f MB",
                 loadTime, first, times[times.count / 2], times[0], times.count, threads, peakRSSMegabytes()))
}

/// Calls `forward` once (the first call of a process: primitive creation, fresh memory, Winograd
/// weights transformed into temporary memory), once more (the call that transforms them again and
/// keeps them, KernelWeights.swift; printed to stderr), then `runs` more times (at least once); the
/// first call's seconds, the later ones sorted, and the last result.
func timeForward<R>(runs: Int, _ forward: () throws -> R) rethrows -> (first: Double, sorted: [Double], result: R) {
    let t0 = now()
    var result = try forward()
    let first = now() - t0
    let t1 = now()
    result = try forward()
    FileHandle.standardError.write(String(format: "second forward (keeps its transformed Winograd weights) %.3f s\n", now() - t1).data(using: .utf8)!)
    var times: [Double] = []
    for _ in 0..<max(1, runs) {
        let t = now()
        result = try forward()
        times.append(now() - t)
    }
    return (first, times.sorted(), result)
}

/// `count` values uniform in `range` from a fixed 64-bit LCG (Knuth's MMIX constants) started at
/// `seed`: the top 24 bits of each state, scaled.
func seededUniform(_ count: Int, seed: UInt64, in range: Range<Float>) -> [Float] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return range.lowerBound + (range.upperBound - range.lowerBound) * (Float(state >> 40) / Float(1 << 24))
    }
}

/// Peak resident set size of this process (VmHWM), in MB.
func peakRSSMegabytes() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return .nan }
    return Double(line.split(separator: " ").dropFirst().first.map(String.init) ?? "") .map { $0 / 1024 } ?? .nan
}

/// dlib's face-recognition ResNet (ID-dlib): the time of one 150×150 chip's descriptor (a chip of
/// raw RGB bytes, or a fixed pattern), after a warm-up run.
func benchDlib(model: String, chip: String?, threads: Int, runs: Int) throws {
    let context = ComputeContext(threads: threads)
    var start = DispatchTime.now().uptimeNanoseconds
    let net = try DlibResNet(network: try DlibNetwork(path: model, structure: DlibResNet.structure), context: context)
    print(String(format: "dlib ResNet: loaded in %.1f ms", Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6))
    let n = DlibResNet.inputSize * DlibResNet.inputSize * 3
    let rgb = try chip.map { [UInt8](try Data(contentsOf: URL(fileURLWithPath: $0))) } ?? (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 37 / 5) }
    var descriptor = try net.descriptor(rgb: rgb, context)
    var times: [Double] = []
    for _ in 0..<max(runs, 1) {
        start = DispatchTime.now().uptimeNanoseconds
        descriptor = try net.descriptor(rgb: rgb, context)
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
    }
    times.sort()
    print(String(format: "dlib ResNet: one 150×150 descriptor: median %.2f ms, best %.2f ms over %d runs, %d thread(s); |d| = %.4f",
                 times[times.count / 2], times[0], times.count, threads, descriptor.map { Double($0 * $0) }.reduce(0, +).squareRoot()))
}

// MARK: command line

let args = Array(CommandLine.arguments.dropFirst())
ProcessTuning.keepFreedMemoryForReuse()
func option(_ name: String) -> String? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}
let threads = option("--threads").flatMap(Int.init) ?? ProcessInfo.processInfo.activeProcessorCount
let seconds = option("--seconds").flatMap(Double.init) ?? 0.5
switch args.first {
case "conv":
    do {
        try benchConv(threads: threads, seconds: seconds, reference: option("--reference"))
    } catch {
        FileHandle.standardError.write(Data("facerestore-bench: \(error)\n".utf8))
        exit(1)
    }
case "dense":
    do {
        try benchDenseConvs(threads: threads, seconds: seconds, size: option("--size").flatMap(Int.init) ?? 210)
    } catch {
        FileHandle.standardError.write(Data("facerestore-bench: \(error)\n".utf8))
        exit(1)
    }
case "gfpgan", "gpen", "restoreformer", "codeformer":
    do {
        guard let model = option("--model"), let io = option("--io") else {
            print("usage: facerestore-bench gfpgan|gpen|restoreformer|codeformer --model CKPT --io IO.safetensors [--out OUT.safetensors] [--runs N] [--threads N] [--precision fp32|bf16] [--fidelity W]")
            exit(2)
        }
        try benchFaceModel(model: model, io: io, output: option("--out"), threads: threads, runs: option("--runs").flatMap(Int.init) ?? 3,
                        precision: option("--precision").flatMap(Precision.init(rawValue:)) ?? .fp32)
    } catch {
        FileHandle.standardError.write(Data("facerestore-bench: \(error)\n".utf8))
        exit(1)
    }
case "parsenet":
    do {
        guard let model = option("--model") else {
            print("usage: facerestore-bench parsenet --model parsing_parsenet.pth [--runs N] [--threads N]")
            exit(2)
        }
        try benchParseNet(model: model, threads: threads, runs: option("--runs").flatMap(Int.init) ?? 3)
    } catch {
        FileHandle.standardError.write(Data("facerestore-bench: \(error)\n".utf8))
        exit(1)
    }
case "esrgan":
    do {
        guard let model = option("--model") else {
            print("usage: facerestore-bench esrgan --model CKPT|PARAM [--size 400] [--runs N] [--threads N] [--precision fp32|bf16]")
            exit(2)
        }
        try benchRealESRGAN(model: model, size: option("--size").flatMap(Int.init) ?? 400, threads: threads,
                            runs: option("--runs").flatMap(Int.init) ?? 3,
                            precision: option("--precision").flatMap(Precision.init(rawValue:)) ?? .fp32)
    } catch {
        FileHandle.standardError.write(Data("facerestore-bench: \(error)\n".utf8))
        exit(1)
    }
case "dlib":
    do {
        guard let model = option("--model") else {
            print("usage: facerestore-bench dlib --model dlib_face_recognition_resnet_model_v1.dat [--chip CHIP.rgb] [--runs N] [--threads N]")
            exit(2)
        }
        try benchDlib(model: model, chip: option("--chip"), threads: threads, runs: option("--runs").flatMap(Int.init) ?? 20)
    } catch {
        FileHandle.standardError.write(Data("facerestore-bench: \(error)\n".utf8))
        exit(1)
    }
default:
    print("usage: facerestore-bench conv [--threads N] [--seconds S] [--reference PYTHON]")
    print("       facerestore-bench gfpgan --model CKPT --io IO.safetensors [--out OUT.safetensors] [--runs N]")
    print("       facerestore-bench esrgan --model CKPT|PARAM [--size 400] [--runs N]")
    print("       facerestore-bench parsenet --model parsing_parsenet.pth [--runs N]")
    print("       facerestore-bench dlib --model dlib_face_recognition_resnet_model_v1.dat [--chip CHIP.rgb] [--runs N]")
    exit(args.isEmpty ? 0 : 2)
}
