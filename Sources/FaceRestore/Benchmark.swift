// The papers' evaluation, end to end: high-quality faces are degraded with a paper's pipeline and
// a seed, restored by each model as aligned faces (GFP-GAN's and GPEN's `--aligned` path; a
// general restorer such as Real-ESRGAN runs on the whole face at scale 1), and scored against the
// originals. The report has the input itself as the baseline row and the ground truth's
// no-reference scores as the last row, as the GFP-GAN paper's Table 1 lays them out, in Markdown,
// JSON and a self-contained HTML page (table, one bar chart per metric, example faces).

import FaceRestoreEngine
import FaceRestoreEvaluation
import FaceRestoreImaging
import FaceRestorePipeline
import Foundation

/// What a benchmark runs.
public struct BenchmarkConfiguration: Sendable {
    /// A folder of high-quality face images (aligned, as FFHQ or CelebA-HQ).
    public var highQuality: String
    /// The output folder: `gt/`, `lq/`, one folder per model, and the reports.
    public var output: String
    /// Face models (restored as aligned faces) or general restorers (whole face, scale 1).
    public var models: [ModelSpec]
    public var degradation = DegradationSettings.preset(.gfpgan)
    public var seed = 0
    public var threads: Int?
    public var store = ModelStore()
    /// Faces shown in the HTML report.
    public var examples = 4
    /// The network metrics' weight files (ID-dlib runs when its model is installed).
    public var metricWeights = MetricWeights()

    public init(highQuality: String, output: String, models: [ModelSpec]) {
        self.highQuality = highQuality
        self.output = output
        self.models = models
    }
}

/// One row of the report: a method and the mean of each metric.
public struct BenchmarkRow: Sendable, Codable {
    public var method: String
    /// The network the model file holds (empty for the input and ground-truth rows).
    public var network: String
    /// The output folder's name under the benchmark's output.
    public var folder: String
    public var means: [String: Double]
    public var images: Int
    /// Seconds spent restoring (0 for the input and ground-truth rows).
    public var seconds: Double
    public var failures: [String]
}

public struct BenchmarkReport: Sendable, Codable {
    public var metrics: [Metric]
    public var rows: [BenchmarkRow]
    public var names: [String]
    public var settings: [String: String]
    public var degradation: DegradationSettings
}

/// Degrade → restore → score, for each model.
public struct Benchmark: Sendable {
    public let configuration: BenchmarkConfiguration

    public init(_ configuration: BenchmarkConfiguration) { self.configuration = configuration }

    /// The metrics that can run here, in the paper's column order (LPIPS, FID, NIQE, identity,
    /// PSNR, SSIM): PSNR and SSIM always; NIQE, BRISQUE and ID-dlib when installed; LPIPS, FID,
    /// Deg. and LMD when their weights are given.
    public static func availableMetrics(_ weights: MetricWeights = MetricWeights())
        -> (metrics: [Metric], niqe: NIQEModel?, brisque: BRISQUEModel?) {
        let niqe = try? NIQEModel(contentsOf: NIQEModel.defaultPath)
        let brisque = try? BRISQUEModel(modelPath: BRISQUEModel.defaultModelPath, rangePath: BRISQUEModel.defaultRangePath)
        var available: Set<Metric> = Set(weights.available).union([.psnr, .ssim])
        if niqe != nil { available.insert(.niqe) }
        if brisque != nil { available.insert(.brisque) }
        let order: [Metric] = [.lpips, .fid, .niqe, .brisque, .deg, .idDlib, .lmd, .psnr, .ssim]
        return (order.filter { available.contains($0) }, niqe, brisque)
    }

    /// Runs the benchmark; `progress` gets a line as each step starts.
    public func run(progress: ((String) -> Void)? = nil) throws -> BenchmarkReport {
        let c = configuration
        let files = try Evaluator.images(at: c.highQuality)
        guard !files.isEmpty else { throw EvaluationError.invalidInput("\(c.highQuality): no .png or .jpg images") }
        let degrader = try Degrader(c.degradation)
        let context = ComputeContext(threads: c.threads)
        let fm = FileManager.default
        func folder(_ name: String) throws -> String {
            let path = c.output + "/" + name
            do { try fm.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
                throw EvaluationError.invalidInput("\(path): cannot create the folder")
            }
            return path
        }
        let gtFolder = try folder("gt"), lqFolder = try folder("lq")
        var names: [String] = []
        var sizes: [String: (Int, Int)] = [:]
        for (i, file) in files.enumerated() {
            progress?("degrading \(i + 1)/\(files.count): \(file)")
            let hq = try ImageIO.read(path: file).image
            let result = try degrader.degrade(hq, seed: c.seed + i, context: context)
            let name = Restorer.baseName(file)
            let gt = result.groundTruth ?? hq
            try ImageIO.write(gt, to: "\(gtFolder)/\(name).png")
            try ImageIO.write(result.image, to: "\(lqFolder)/\(name).png")
            names.append(name)
            sizes[name] = (gt.width, gt.height)
        }
        let (metrics, niqe, brisque) = Self.availableMetrics(c.metricWeights)
        var evaluator = Evaluator(metrics: metrics)
        evaluator.niqeModel = niqe
        evaluator.brisqueModel = brisque
        try evaluator.loadNetworks(c.metricWeights, threads: c.threads)
        if let inception = evaluator.fidInception, evaluator.fidReference == nil {
            // FID against the ground truth's statistics, computed once for every row.
            progress?("FID statistics of the ground truth")
            evaluator.fidReference = try FID.statistics(ofFolder: gtFolder, inception: inception)
        }
        func row(_ method: String, _ folderName: String, network: String = "", seconds: Double, metrics: [Metric]? = nil,
                 reference: String? = gtFolder) throws -> BenchmarkRow {
            var e = evaluator
            if let metrics { e.metrics = metrics }
            let report = try e.evaluate(restored: c.output + "/" + folderName, reference: reference)
            return BenchmarkRow(method: method, network: network, folder: folderName, means: report.means, images: report.rows.count, seconds: seconds,
                                failures: report.failures)
        }
        progress?("scoring the input")
        var rows = [try row("Input", "lq", seconds: 0)]
        var used: Set<String> = ["gt", "lq"]
        for spec in c.models {
            let (network, restore) = try restorer(for: spec, context: context)
            // Named by the spec as given (`1.4`, a file's name) and the network it holds; folders unique.
            let given: String
            switch spec {
            case .file(let path): given = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
            default: given = spec.description
            }
            var slug = given.lowercased().split { !($0.isLetter || $0.isNumber || $0 == ".") }.joined(separator: "-")
            if slug.isEmpty { slug = "model" }
            while used.contains(slug) { slug += "-2" }
            used.insert(slug)
            let out = try folder(slug)
            var seconds = 0.0
            for (i, name) in names.enumerated() {
                progress?("\(given) \(i + 1)/\(names.count): \(name)")
                let lq = try ImageIO.read(path: "\(lqFolder)/\(name).png").image
                let start = DispatchTime.now().uptimeNanoseconds
                var restored = try restore(lq)
                seconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                if let (w, h) = sizes[name], restored.width != w || restored.height != h { restored = restored.resizedLinear(width: w, height: h) }
                try ImageIO.write(restored, to: "\(out)/\(name).png")
            }
            progress?("scoring \(given)")
            rows.append(try row(given, slug, network: network, seconds: seconds))
        }
        // The ground truth's own no-reference scores (FID only against a statistics file).
        let noReference = metrics.filter { !$0.needsReference && ($0 != .fid || c.metricWeights.fidStatistics != nil) }
        if !noReference.isEmpty { rows.append(try row("Ground truth", "gt", seconds: 0, metrics: noReference, reference: nil)) }
        let settings = ["seed": "\(c.seed)", "pipeline": c.degradation.pipeline.rawValue, "images": "\(names.count)",
                        "high_quality": c.highQuality, "version": faceRestoreVersion]
        return BenchmarkReport(metrics: metrics, rows: rows, names: names, settings: settings, degradation: c.degradation)
    }

    /// A name and a restore function for `spec`: a face model as aligned faces, else a general
    /// restorer at scale 1.
    func restorer(for spec: ModelSpec, context: ComputeContext) throws -> (String, (PixelImage) throws -> PixelImage) {
        let store = configuration.store
        if let path = try? store.path(for: spec, kind: .faceRestoration), let face = try? FaceRestorer(modelPath: path, context: context) {
            return (face.network.name, { try face.restoreAligned($0, context: context).restored })
        }
        let general = try store.backgroundUpsampler(spec, tile: 400, context: context)
        return (general.title, { try general.enhance($0, outscale: 1, context: context) })
    }
}

extension BenchmarkReport {
    /// The paper's table layout: the metrics with their direction, one row per method.
    public var markdown: String {
        let m = metrics
        var lines = ["# Benchmark", "",
                     "\(settings["images"] ?? "?") faces from `\(settings["high_quality"] ?? "")`, degraded with the \(degradation.pipeline.rawValue) "
                        + "pipeline (seed \(settings["seed"] ?? "0")); FaceRestore \(settings["version"] ?? "").", "",
                     "| Method | " + m.map(\.heading).joined(separator: " | ") + " | seconds |",
                     "|---|" + m.map { _ in "---:|" }.joined() + "---:|"]
        for r in rows {
            let cells = m.map { metric in r.means[metric.rawValue].map { EvaluationReport.format($0, metric) } ?? "–" }
            lines.append("| \(r.method)\(r.network.isEmpty ? "" : " (\(r.network))") | " + cells.joined(separator: " | ") + " | " + (r.seconds > 0 ? String(format: "%.1f", r.seconds) : "–") + " |")
        }
        let failures = rows.flatMap(\.failures)
        if !failures.isEmpty { lines += ["", "Not scored:"] + failures.map { "- \($0)" } }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A self-contained page: the table, a bar chart per metric (inline SVG) and a grid of example
    /// faces (input, each method, ground truth) linked by relative paths.
    public func html(examples: Int) -> String {
        func escape(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
                .replacingOccurrences(of: "\"", with: "&quot;")
        }
        var html = """
            <!doctype html><html lang="en"><head><meta charset="utf-8"><title>FaceRestore benchmark</title><style>
            body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:12px 0}
            td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child{text-align:left}
            .charts{display:flex;flex-wrap:wrap;gap:24px}.chart h3{margin:4px 0}.grid{display:grid;gap:6px}
            .grid img{width:128px;height:128px;object-fit:cover;image-rendering:auto}.grid div{font-size:12px;text-align:center}
            </style></head><body><h1>FaceRestore benchmark</h1>
            """
        html += "<p>\(escape(settings["images"] ?? "?")) faces, \(escape(degradation.pipeline.rawValue)) degradation, seed \(escape(settings["seed"] ?? "0")).</p>"
        html += "<table><tr><th>Method</th>" + metrics.map { "<th>\(escape($0.heading))</th>" }.joined() + "<th>seconds</th></tr>"
        for r in rows {
            html += "<tr><td>\(escape(r.method))\(r.network.isEmpty ? "" : "<br><small>\(escape(r.network))</small>")</td>" + metrics.map { m in "<td>\(r.means[m.rawValue].map { EvaluationReport.format($0, m) } ?? "–")</td>" }.joined()
                + "<td>\(r.seconds > 0 ? String(format: "%.1f", r.seconds) : "–")</td></tr>"
        }
        html += "</table><div class=\"charts\">"
        for m in metrics {
            let bars = rows.compactMap { r in r.means[m.rawValue].flatMap { $0.isFinite ? (r.method, $0) : nil } }
            guard let top = bars.map(\.1).max(), top > 0 else { continue }
            let height = 24 * bars.count + 8
            html += "<div class=\"chart\"><h3>\(escape(m.heading))</h3><svg width=\"420\" height=\"\(height)\" role=\"img\">"
            for (i, (method, value)) in bars.enumerated() {
                let w = Int(200 * value / top)
                html += "<text x=\"0\" y=\"\(24 * i + 17)\" font-size=\"12\">\(escape(String(method.prefix(20))))</text>"
                    + "<rect x=\"140\" y=\"\(24 * i + 4)\" width=\"\(max(w, 1))\" height=\"18\" fill=\"#4a7bd0\"/>"
                    + "<text x=\"\(144 + w)\" y=\"\(24 * i + 17)\" font-size=\"12\">\(EvaluationReport.format(value, m))</text>"
            }
            html += "</svg></div>"
        }
        html += "</div><h2>Examples</h2>"
        let columns = rows.filter { $0.method != "Ground truth" }.map { ($0.method, $0.folder) } + [("Ground truth", "gt")]
        html += "<div class=\"grid\" style=\"grid-template-columns:repeat(\(columns.count),128px)\">"
        html += columns.map { "<div>\(escape($0.0))</div>" }.joined()
        for name in names.prefix(examples) {
            for (_, folder) in columns {
                let src = escape("\(folder)/\(name).png")
                html += "<img src=\"\(src)\" alt=\"\(src)\">"
            }
        }
        return html + "</div></body></html>\n"
    }
}
