// Working memory of a restoration, estimated from the image's header before anything is decoded,
// and checked against a budget (`--max-memory`; by default 85% of the machine's memory or of the
// cgroup's limit, whichever is smaller). A restoration that would not fit is refused with one
// line naming what dominates and the setting that would fit, instead of being killed by the
// kernel half way.
//
// The estimate is the resident memory when the models finished loading plus the largest of the
// phases that do not overlap (each phase's buffers are freed before the next starts):
//   detection   the detector's activations on the whole photo: ResNet50 620 B and MobileNet0.25
//               72 B per input pixel (upper ends of peak-RSS increments measured on 2.25–100 MP
//               images; RetinaFace runs at full resolution, as facexlib does)
//   faces       one face through the network and the parser at a time: 600 MB at 512², by area
//   background  the output and its copies (background kept for re-blending, pasted image, the
//               encoder's RGB copy and its compressed bytes): 16 B per output pixel, plus the
//               Real-ESRGAN tile's activations, 48 KB per padded tile pixel (x4plus and x2plus,
//               tile 100–400)
// plus the decoded input (4 B per input pixel). Measured in one process on 2 Xeon cores.

import FaceRestoreImaging
import FaceRestoreModels
import FaceRestorePipeline
import Foundation

/// A memory budget in bytes.
public struct MemoryBudget: Sendable, Equatable, CustomStringConvertible {
    public var bytes: Int64

    public init(bytes: Int64) { self.bytes = bytes }

    /// 85% of the machine's memory, or of this process's cgroup limit when that is lower.
    public static var machineDefault: MemoryBudget {
        MemoryBudget(bytes: Int64(Double(machineMemory) * 0.85))
    }

    /// Physical memory, or the cgroup (v2 or v1) limit when lower.
    public static var machineMemory: Int64 {
        var total = Int64(clamping: ProcessInfo.processInfo.physicalMemory)
        for file in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
            if let text = try? String(contentsOfFile: file, encoding: .utf8),
               let limit = Int64(text.trimmingCharacters(in: .whitespacesAndNewlines)), limit > 0 {
                total = min(total, limit)
            }
        }
        return total
    }

    /// Parses `8G`, `512M`, `1.5GB`, `2T` or a plain number of bytes (binary units).
    public init?(parsing text: String) {
        let t = text.trimmingCharacters(in: .whitespaces).uppercased()
        var digits = t
        var unit: Double = 1
        for (suffix, scale) in [("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10),
                                ("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10), ("B", 1)] where t.hasSuffix(suffix) {
            digits = String(t.dropLast(suffix.count))
            unit = Double(scale)
            break
        }
        guard let value = Double(digits), value.isFinite, value > 0, value * unit < 9e18 else { return nil }
        bytes = Int64(value * unit)
    }

    public var description: String { MemoryBudget.format(bytes) }

    /// Bytes in words: "7.3 GB", "640 MB" (binary units).
    public static func format(_ bytes: Int64) -> String {
        let gb = Double(bytes) / Double(1 << 30)
        if gb >= 1 { return String(format: gb >= 100 ? "%.0f GB" : "%.1f GB", gb) }
        return String(format: "%.0f MB", Double(bytes) / Double(1 << 20))
    }
}

/// What an estimate is dominated by.
public enum MemoryPhase: String, Sendable {
    case detection, faces, background
}

/// The estimated peak of one restoration.
public struct MemoryEstimate: Sendable, Equatable {
    /// Resident memory with the models loaded.
    public var baseline: Int64
    public var detection: Int64
    public var faces: Int64
    public var background: Int64
    public var input: Int64

    /// The estimated peak resident memory.
    public var total: Int64 { baseline + input + max(detection, faces, background) }

    /// The phase that sets the peak.
    public var dominant: MemoryPhase {
        if detection >= faces && detection >= background { return .detection }
        return background >= faces ? .background : .faces
    }
}

/// A restoration that would not fit the memory budget. One line, with what would fit.
public struct MemoryError: Error, CustomStringConvertible, Equatable {
    public let needed: Int64
    public let budget: Int64
    /// What dominates, e.g. "an 80000×80000 output at -s 8".
    public let cause: String
    /// Settings that would fit, e.g. "-s 2 (needs 7.3 GB)".
    public let fits: [String]

    public init(needed: Int64, budget: Int64, cause: String, fits: [String]) {
        self.needed = needed
        self.budget = budget
        self.cause = cause
        self.fits = fits
    }

    public var description: String {
        var text = "needs about \(MemoryBudget.format(needed)) of memory for \(cause), over the \(MemoryBudget.format(budget)) budget (--max-memory)"
        if !fits.isEmpty { text += "; " + fits.joined(separator: " or ") + " would fit" }
        return text
    }
}

/// Estimates of the working memory of the parts of a restoration.
public enum MemoryPlan {
    /// Detector activations per input pixel.
    static func detectorBytesPerPixel(_ backbone: RetinaFace.Backbone) -> Double {
        switch backbone {
        case .resNet50: return 620
        case .mobileNet025: return 72
        }
    }

    /// Output copies per output pixel (background, pasted image, encoder copy, compressed bytes).
    static let outputBytesPerPixel: Double = 16
    /// Real-ESRGAN activations per padded tile pixel.
    static let upsamplerBytesPerTilePixel: Double = 48 * 1024
    /// One face through the network and the parser, at 512².
    static let faceBytesAt512: Double = 600 * 1024 * 1024

    /// Bytes of a Real-ESRGAN pass over a `width`×`height` image in tiles of `tile` (0: whole).
    static func upsampler(width: Int, height: Int, tile: Int) -> Double {
        let w = tile > 0 ? min(width, tile) + 20 : width + 20
        let h = tile > 0 ? min(height, tile) + 20 : height + 20
        return Double(w) * Double(h) * upsamplerBytesPerTilePixel
    }

    /// Resident memory of this process now (from /proc; 0 where unavailable).
    public static var residentBytes: Int64 {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int64(fields[1]) else { return 0 }
        return pages * Int64(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Bytes of a detection on a `width`×`height` image (the `detect` command's whole work).
    public static func detection(width: Int, height: Int, backbone: RetinaFace.Backbone) -> Int64 {
        Int64(clamping: UInt64(min(Double(width) * Double(height) * (detectorBytesPerPixel(backbone) + 4), 9e18)))
    }
}

extension Restorer {
    /// The estimated peak memory of restoring a `width`×`height` image with `options`.
    public func memoryEstimate(width: Int, height: Int, options: PhotoOptions = PhotoOptions()) -> MemoryEstimate {
        memoryEstimate(width: width, height: height, options: options, tile: configuration.backgroundTile, detector: nil)
    }

    /// The estimate with another background tile and/or detector backbone.
    func memoryEstimate(width: Int, height: Int, options: PhotoOptions, tile: Int, detector: RetinaFace.Backbone?) -> MemoryEstimate {
        let p = Double(width) * Double(height)
        var detection = 0.0, faces = 0.0, background = 0.0
        switch mode {
        case .aligned(let face):
            faces = MemoryPlan.faceBytesAt512 * Double(face.faceSize * face.faceSize) / (512 * 512)
        case .general:
            let s = Double(options.upscale ?? Recipe.facexlib.defaultUpscale)
            background = p * s * s * MemoryPlan.outputBytesPerPixel
                + MemoryPlan.upsampler(width: width, height: height, tile: tile)
        case .photos(let photo):
            let s = Double(options.upscale ?? photo.recipe.defaultUpscale)
            let detected = photo.recipe.detectsOnUpscaledPhoto && s != 1 ? p * s * s : p
            detection = detected * MemoryPlan.detectorBytesPerPixel(detector ?? photo.detector.backbone)
            faces = MemoryPlan.faceBytesAt512 * Double(photo.restorer.faceSize * photo.restorer.faceSize) / (512 * 512)
            background = p * s * s * MemoryPlan.outputBytesPerPixel
            if photo.background != nil {
                background += MemoryPlan.upsampler(width: width, height: height, tile: tile)
            }
        }
        func bytes(_ x: Double) -> Int64 { Int64(clamping: UInt64(min(max(x, 0), 9e18))) }
        return MemoryEstimate(baseline: residentAtLoad, detection: bytes(detection), faces: bytes(faces),
                              background: bytes(background), input: bytes(4 * p))
    }

    /// Throws `MemoryError` when restoring a `width`×`height` image with `options` would need
    /// more than the configured budget, naming settings that would fit.
    public func checkMemory(width: Int, height: Int, options: PhotoOptions = PhotoOptions()) throws {
        guard let budget = configuration.memoryBudget?.bytes else { return }
        let estimate = memoryEstimate(width: width, height: height, options: options)
        guard estimate.total > budget else { return }
        let upscale = options.upscale ?? recipe?.defaultUpscale ?? Recipe.facexlib.defaultUpscale
        var fits: [String] = []
        func need(_ e: MemoryEstimate) -> String { MemoryBudget.format(e.total) }
        // A smaller upscale, when the output is what does not fit.
        if estimate.dominant == .background, upscale > 1,
           let s = (1..<upscale).reversed().first(where: { var o = options; o.upscale = $0; return memoryEstimate(width: width, height: height, options: o).total <= budget }) {
            var o = options
            o.upscale = s
            fits.append("-s \(s) (\(need(memoryEstimate(width: width, height: height, options: o))))")
        }
        // A smaller Real-ESRGAN tile.
        let upsamples: Bool
        switch mode {
        case .photos(let photo): upsamples = photo.background != nil
        case .general: upsamples = true
        case .aligned: upsamples = false
        }
        if upsamples, estimate.dominant == .background {
            let current = configuration.backgroundTile
            for tile in [200, 100, 50] where current == 0 || tile < current {
                let e = memoryEstimate(width: width, height: height, options: options, tile: tile, detector: nil)
                if e.total <= budget { fits.append("--bg-tile \(tile) (\(need(e)))"); break }
            }
        }
        // The smaller detector.
        if case .photos(let photo) = mode, estimate.dominant == .detection, photo.detector.backbone == .resNet50 {
            let e = memoryEstimate(width: width, height: height, options: options, tile: configuration.backgroundTile, detector: .mobileNet025)
            if e.total <= budget { fits.append("--detector retinaface-mobilenet0.25 (\(need(e)))") }
        }
        // More of the machine.
        if Double(estimate.total) < Double(MemoryBudget.machineMemory) * 0.95, estimate.total > budget {
            fits.append("--max-memory \(Int((Double(estimate.total) / Double(1 << 30)).rounded(.up)))G")
        }
        throw MemoryError(needed: estimate.total, budget: budget, cause: cause(of: estimate, width: width, height: height, upscale: upscale), fits: fits)
    }

    /// What dominates `estimate`, in words.
    func cause(of estimate: MemoryEstimate, width: Int, height: Int, upscale: Int) -> String {
        switch estimate.dominant {
        case .detection:
            let name: String
            if case .photos(let photo) = mode { name = "the \(photo.detector.backbone.rawValue) detector" } else { name = "the detector" }
            return "\(name) on the \(width)×\(height) photo"
        case .faces:
            return "the face network"
        case .background:
            let (ow, oh) = (width.multipliedReportingOverflow(by: upscale).partialValue, height.multipliedReportingOverflow(by: upscale).partialValue)
            return "the \(ow)×\(oh) output at -s \(upscale)"
        }
    }
}
