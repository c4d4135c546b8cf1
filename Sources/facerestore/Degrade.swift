// `facerestore degrade`: the papers' synthetic degradation over a folder of high-quality faces,
// with a JSON sidecar of the drawn parameters per output. Argument mapping onto
// FaceRestoreEvaluation's `Degrader`.

import ArgumentParser
import FaceRestore
import FaceRestoreEvaluation
import Foundation
import Synchronization

struct Degrade: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Degrade high-quality faces as GFP-GAN, GPEN or CodeFormer train (blur, downsample, noise, JPEG, colour).",
        discussion: """
            Image i of the name-sorted input is degraded with random.seed(S+i) and np.random.seed(S+i) semantics, \
            drawing the reference's parameters in the reference's order (no flip; GFP-GAN's torch colour jitter is \
            not applied). Writes OUT/<name>.png and OUT/<name>.json (the drawn parameters); GPEN's preset also \
            writes the ground truth it changed (gray) to OUT/gt/<name>.png.
            """)

    @Option(name: .shortAndLong, help: "A high-quality image, or a folder of them.")
    var input: String

    @Option(name: .shortAndLong, help: "Output folder.")
    var output: String

    @Option(name: .long, help: "Seed of image 0 (image i uses seed + i).")
    var seed: Int = 0

    @Option(name: .long, help: "Whose pipeline and ranges. (values: gfpgan, gpen, codeformer)")
    var preset: DegradationSettings.Pipeline = .gfpgan

    @Option(name: .long, help: ArgumentHelp("Blur σ range.", valueName: "lo,hi")) var blurSigma: String?
    @Option(name: .long, help: ArgumentHelp("Downsampling factor range.", valueName: "lo,hi")) var scaleRange: String?
    @Option(name: .long, help: ArgumentHelp("Noise σ range (0–255), or none.", valueName: "lo,hi")) var noiseRange: String?
    @Option(name: .long, help: ArgumentHelp("JPEG quality range, or none.", valueName: "lo,hi")) var jpegRange: String?
    @Option(name: .long, help: "Probability of the colour shift.") var jitterProb: Double?
    @Option(name: .long, help: "Probability of gray.") var grayProb: Double?
    @Option(name: .long, help: "Blur kernel size (odd).") var kernelSize: Int?

    @OptionGroup var compute: ComputeOptions

    /// The preset with the overrides given.
    func settings() throws -> DegradationSettings {
        func pair(_ text: String, _ flag: String) throws -> [Double] {
            let parts = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard parts.count == 2, let a = parts[0], let b = parts[1] else { throw ValidationError("\(flag) takes lo,hi (e.g. 1,8), got '\(text)'") }
            return [a, b]
        }
        func optionalPair(_ text: String, _ flag: String) throws -> [Double]? { text.lowercased() == "none" ? nil : try pair(text, flag) }
        var s = DegradationSettings.preset(preset)
        if let blurSigma { s.blurSigma = try pair(blurSigma, "--blur-sigma") }
        if let scaleRange { s.downsample = try pair(scaleRange, "--scale-range") }
        if let noiseRange { s.noise = try optionalPair(noiseRange, "--noise-range") }
        if let jpegRange { s.jpeg = try optionalPair(jpegRange, "--jpeg-range") }
        if let jitterProb { s.colorJitterProbability = jitterProb }
        if let grayProb { s.grayProbability = grayProb }
        if let kernelSize { s.kernelSize = kernelSize }
        do { try s.validate() } catch { throw ValidationError("\(error)") }
        return s
    }

    func validate() throws {
        _ = try settings()
        guard seed >= 0 else { throw ValidationError("--seed must be 0 or more") }
    }

    func run() throws {
        let degrader = try Degrader(try settings())
        let all = try listInputs(input)
        let files = all.filter { ImageFormat(extension: URL(fileURLWithPath: $0).pathExtension) != nil }
        if files.count < all.count { printError("facerestore: skipping \(plural(all.count - files.count, "non-image file")) (only .png and .jpg are read)") }
        if files.isEmpty { throw CLIError("\(input): no .png or .jpg files") }
        // Lines in the order images finish, numbered by how many have.
        let progress = Mutex((Progress(total: files.count), 0))
        let failures: [(String, Error)]
        do {
            failures = try degrader.degrade(files: files, seed: seed, into: output, workers: compute.context.threads) { _, file, error in
                progress.withLock { state in
                    if let error { printError("facerestore: \(RestoreError(path: file, underlying: error))") } else { state.0.done(state.1, file, nil) }
                    state.1 += 1
                }
            }
        } catch { throw CLIError("\(error)") }
        let failed = failures.map(\.0)
        if !failed.isEmpty {
            printError("facerestore: \(plural(failed.count, "image")) could not be degraded: \(failed.joined(separator: ", "))")
            throw ExitCode(1)
        }
        print("degraded \(plural(files.count, "image")) into \(output) (\(preset.rawValue), seed \(seed))")
    }
}

extension DegradationSettings.Pipeline: ExpressibleByArgument {}
