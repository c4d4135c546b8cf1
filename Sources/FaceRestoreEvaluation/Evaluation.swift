// An evaluation run: restored images paired with their references by name, each scored with the
// metrics asked for, and the report (per image and the mean) as a table, JSON or CSV. What the
// `eval` command and the benchmark call.

import FaceRestoreImaging
import FaceRestoreModels
import Foundation

/// A metric `Evaluator` can compute.
public enum Metric: String, Sendable, CaseIterable, Codable {
    case psnr, ssim, lpips, niqe, brisque, fid
    /// Identity distance with dlib's face-recognition network (1 − cosine of the embeddings).
    case idDlib = "id-dlib"
    /// The GFP-GAN group's identity "Deg.": the ArcFace embedding angle in degrees.
    case deg
    /// Landmark distance (AWing FAN, 98 points, in 512-pixel units).
    case lmd

    /// Whether it compares each image with its reference image (FID compares the sets, against
    /// the reference folder or a statistics file).
    public var needsReference: Bool { [.psnr, .ssim, .lpips, .idDlib, .deg, .lmd].contains(self) }
    /// Whether a higher value is better (for the table's arrows).
    public var higherIsBetter: Bool { self == .psnr || self == .ssim }
    /// Whether it scores one image (else the whole set: FID).
    public var perImage: Bool { self != .fid }
    /// The column heading.
    public var label: String {
        switch self {
        case .idDlib: return "ID-dlib"
        case .deg: return "Deg."
        default: return rawValue.uppercased()
        }
    }
    /// The heading with the direction arrow.
    public var heading: String { label + (higherIsBetter ? " ↑" : " ↓") }
}

/// An image being scored: its file (some metrics read it again as the reference scripts do,
/// e.g. `cv2.imread(path, 0)`) and its decoded pixels.
public struct ScoredImage: Sendable {
    public let path: String
    public let image: PixelImage
}

/// A metric computed by a network on a restored image and its reference (LPIPS, the identity
/// distances, LMD).
public protocol PairMetric: Sendable {
    func score(_ restored: ScoredImage, reference: ScoredImage) throws -> Double
}

/// One scored image.
public struct EvaluationRow: Sendable, Codable, Equatable {
    public var name: String
    public var values: [String: Double]

    public init(name: String, values: [String: Double]) {
        self.name = name
        self.values = values
    }
}

/// The scores of a folder: one row per image that could be scored, the means, and the inputs that
/// could not (one line each).
public struct EvaluationReport: Sendable, Codable {
    public var metrics: [Metric]
    public var rows: [EvaluationRow]
    public var failures: [String]
    /// The settings of the run (crop border, Y channel, …), for the record.
    public var settings: [String: String]

    /// Scores of the whole set (FID).
    public var setValues: [String: Double] = [:]

    /// The mean of each per-image metric over the rows that have it (∞ stays ∞, as basicsr's mean
    /// does), and the set metrics.
    public var means: [String: Double] {
        var out = setValues
        for m in metrics where m.perImage {
            let values = rows.compactMap { $0.values[m.rawValue] }
            // Deg.: pairs under 1° are left out of the mean, as `calculate_cos_dist.py` does (the
            // per-image values are kept).
            if m == .deg { out[m.rawValue] = IdentityDegree(angles: values).mean; continue }
            if !values.isEmpty { out[m.rawValue] = values.reduce(0, +) / Double(values.count) }
        }
        return out
    }

    enum CodingKeys: String, CodingKey { case metrics, rows, failures, settings, means, setValues = "set_values" }

    public init(metrics: [Metric], rows: [EvaluationRow], failures: [String], settings: [String: String],
                setValues: [String: Double] = [:]) {
        self.metrics = metrics
        self.rows = rows
        self.failures = failures
        self.settings = settings
        self.setValues = setValues
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        metrics = try c.decode([Metric].self, forKey: .metrics)
        rows = try c.decode([EvaluationRow].self, forKey: .rows)
        failures = try c.decode([String].self, forKey: .failures)
        settings = try c.decode([String: String].self, forKey: .settings)
        setValues = try c.decodeIfPresent([String: Double].self, forKey: .setValues) ?? [:]
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(metrics, forKey: .metrics)
        try c.encode(rows, forKey: .rows)
        try c.encode(failures, forKey: .failures)
        try c.encode(settings, forKey: .settings)
        try c.encode(means, forKey: .means)
        if !setValues.isEmpty { try c.encode(setValues, forKey: .setValues) }
    }

    /// A value as the tables print it ("–" when missing, "inf" when infinite).
    public static func format(_ v: Double?, _ m: Metric) -> String {
        guard let v else { return "–" }
        if v.isInfinite { return "inf" }
        switch m {
        case .ssim, .lpips, .idDlib: return String(format: "%.4f", v)
        case .fid, .deg: return String(format: "%.2f", v)
        default: return String(format: "%.3f", v)
        }
    }

    /// A terminal table: one row per image when `perImage`, then the mean over `rows.count`
    /// images.
    public func table(perImage: Bool) -> String {
        let headers = ["image"] + metrics.map(\.heading)
        var body: [[String]] = []
        if perImage { body = rows.map { r in [r.name] + metrics.map { Self.format(r.values[$0.rawValue], $0) } } }
        let m = means
        body.append(["mean (\(rows.count))"] + metrics.map { Self.format(m[$0.rawValue], $0) })
        let widths = headers.indices.map { i in ([headers[i]] + body.map { $0[i] }).map(\.count).max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, s in i == 0 ? s.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                : String(repeating: " ", count: widths[i] - s.count) + s }.joined(separator: "  ")
        }
        var out = [line(headers), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")]
        if perImage { out += body.dropLast().map(line); out.append(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) }
        out.append(line(body[body.count - 1]))
        return out.joined(separator: "\n")
    }

    /// CSV: a header, one line per image, and the mean (values with full precision).
    public func csv() -> String {
        func quoted(_ s: String) -> String { s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }
        func value(_ v: Double?) -> String { v.map { $0.isInfinite ? "inf" : "\($0)" } ?? "" }
        var lines = [(["image"] + metrics.map(\.rawValue)).joined(separator: ",")]
        for r in rows { lines.append(([quoted(r.name)] + metrics.map { value(r.values[$0.rawValue]) }).joined(separator: ",")) }
        let m = means
        lines.append((["mean"] + metrics.map { value(m[$0.rawValue]) }).joined(separator: ","))
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Scores restored images: full-reference against a reference folder, no-reference alone.
public struct Evaluator: Sendable {
    public var metrics: [Metric]
    public var fullReference = FullReferenceOptions()
    public var niqeModel: NIQEModel?
    public var brisqueModel: BRISQUEModel?
    /// The networks of the per-image network metrics (LPIPS, ID-dlib, Deg., LMD).
    public var pairModels: [Metric: any PairMetric] = [:]
    /// FID's network, and the reference statistics (nil: those of the reference folder).
    public var fidInception: FIDInception?
    public var fidReference: FIDStatistics?

    public init(metrics: [Metric]) { self.metrics = metrics }

    /// The image files of `path` (a file, or a folder's .png/.jpg files in name order).
    public static func images(at path: String) throws -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw EvaluationError.invalidInput("\(path): no such file or folder") }
        guard isDir.boolValue else { return [path] }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { throw EvaluationError.invalidInput("\(path): cannot list the folder") }
        return names.sorted().filter { !$0.hasPrefix(".") && ImageFormat(extension: URL(fileURLWithPath: $0).pathExtension) != nil }
            .map { path + "/" + $0 }
    }

    static func baseName(_ path: String) -> String { URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent }

    /// Scores every image of `restored`, against the image of the same base name in `reference`
    /// when a full-reference metric is asked for. A file that cannot be scored is a failure line;
    /// the rest go on.
    public func evaluate(restored: String, reference: String?, progress: ((Int, Int, String) -> Void)? = nil) throws -> EvaluationReport {
        let files = try Self.images(at: restored)
        guard !files.isEmpty else { throw EvaluationError.invalidInput("\(restored): no .png or .jpg images") }
        let needsReference = metrics.contains { $0.needsReference } || (metrics.contains(.fid) && fidReference == nil)
        var references: [String: String] = [:]
        if needsReference {
            guard let reference else {
                let names = metrics.filter { $0.needsReference || $0 == .fid }.map(\.label).joined(separator: ", ")
                throw EvaluationError.invalidInput("\(names) need\(metrics.filter { $0.needsReference || $0 == .fid }.count == 1 ? "s" : "") the reference images (--reference)")
            }
            for f in try Self.images(at: reference) { references[Self.baseName(f)] = references[Self.baseName(f)] ?? f }
        }
        if metrics.contains(.niqe) && niqeModel == nil { throw EvaluationError.invalidInput("NIQE needs its parameters file") }
        if metrics.contains(.brisque) && brisqueModel == nil { throw EvaluationError.invalidInput("BRISQUE needs its model files") }
        for m in metrics where [.lpips, .idDlib, .deg, .lmd].contains(m) && pairModels[m] == nil {
            throw EvaluationError.invalidInput("\(m.label) needs its network's weights")
        }
        if metrics.contains(.fid) && fidInception == nil { throw EvaluationError.invalidInput("FID needs the Inception weights") }
        var fidFeatures: [[Float]] = []
        var rows: [EvaluationRow] = []
        var failures: [String] = []
        for (i, file) in files.enumerated() {
            progress?(i, files.count, file)
            do {
                let image = try ImageIO.read(path: file).image
                var values: [String: Double] = [:]
                if needsReference {
                    // A folder of restorations is paired by name; two single files with each other.
                    let match = references.count == 1 && files.count == 1 ? references.values.first : references[Self.baseName(file)]
                    guard let match else { throw EvaluationError.invalidInput("no reference image named \(Self.baseName(file)).* in \(reference ?? "")") }
                    let ref = try ImageIO.read(path: match).image
                    let (restoredImage, referenceImage) = (ScoredImage(path: file, image: image), ScoredImage(path: match, image: ref))
                    if metrics.contains(.psnr) || metrics.contains(.ssim) {
                        let s = try FullReference.scores(image, reference: ref, options: fullReference)
                        if metrics.contains(.psnr) { values["psnr"] = s.psnr }
                        if metrics.contains(.ssim) { values["ssim"] = s.ssim }
                    }
                    // A network metric that cannot score this pair is a failure line of its own.
                    for m in metrics {
                        guard let model = pairModels[m] else { continue }
                        do { values[m.rawValue] = try model.score(restoredImage, reference: referenceImage) } catch {
                            failures.append("\(file): \(m.label): \(error)")
                        }
                    }
                }
                // A no-reference metric that cannot score this image (too small for NIQE's blocks)
                // is a failure line of its own; the image keeps its other scores.
                if metrics.contains(.niqe), let niqeModel {
                    do { values["niqe"] = try niqe(image, cropBorder: fullReference.cropBorder, model: niqeModel) } catch {
                        failures.append("\(file): NIQE: \(error)")
                    }
                }
                if metrics.contains(.brisque), let brisqueModel {
                    do { values["brisque"] = try brisque(image, model: brisqueModel) } catch { failures.append("\(file): BRISQUE: \(error)") }
                }
                if metrics.contains(.fid), let fidInception {
                    do { fidFeatures.append(try fidInception.features(image)) } catch { failures.append("\(file): FID: \(error)") }
                }
                rows.append(EvaluationRow(name: URL(fileURLWithPath: file).lastPathComponent, values: values))
            } catch {
                let text = "\(error)"
                failures.append(text.hasPrefix(file) ? text : "\(file): \(text)")
            }
        }
        var settings = ["crop_border": "\(fullReference.cropBorder)", "y_channel": "\(fullReference.yChannel)",
                        "correct_mean_var": "\(fullReference.correctMeanVariance)", "restored": restored, "reference": reference ?? ""]
        var setValues: [String: Double] = [:]
        if metrics.contains(.fid), let fidInception {
            // The set's statistics against the given ones, else the reference folder's.
            do {
                let ours = try FIDStatistics(features: fidFeatures)
                let theirs: FIDStatistics
                if let fidReference { theirs = fidReference } else {
                    guard let reference else { throw EvaluationError.invalidInput("FID needs --reference or --fid-stats") }
                    theirs = try FID.statistics(ofFolder: reference, inception: fidInception)
                }
                setValues[Metric.fid.rawValue] = try FID.frechetDistance(ours, theirs)
                settings["fid_images"] = "\(fidFeatures.count)"
                settings["fid_reference"] = fidReference == nil ? "folder \(reference ?? "")" : "statistics file"
            } catch {
                failures.append("FID: \(error)")
            }
        }
        if metrics.contains(.deg) {
            settings["deg_pairs_below_1_degree_dropped"] = "\(IdentityDegree(angles: rows.compactMap { $0.values[Metric.deg.rawValue] }).dropped)"
        }
        return EvaluationReport(metrics: metrics, rows: rows, failures: failures, settings: settings, setValues: setValues)
    }
}
