// The parsers that read untrusted bytes, each as one fuzz target: libFuzzer drives them through
// `facerestore-fuzz` (scripts/fuzz), and the test suite replays the committed corpus and every
// input that ever crashed them. A thrown error is the expected answer to bad bytes; a crash, a
// hang, a leak or an unbounded allocation is a finding.

import FaceRestoreEvaluation
import FaceRestoreImaging
import FaceRestoreModels
import FaceRestoreWeights
import Foundation

public enum FuzzTarget: String, CaseIterable, Sendable {
    /// PyTorch checkpoints: zip and legacy containers, the pickle machine, storages.
    case pth
    case safetensors
    case onnx
    /// An ncnn `.param` and `.bin` pair, packed as: 2-byte little-endian length of the `.param`
    /// text, the text, then the `.bin` bytes.
    case ncnn
    case png
    case jpeg
    /// The archive formats: each decoded (first page, 16-bit samples, metadata) and probed;
    /// TIFFs also read band by band from a file (`TIFFBandReader`, large scans' path).
    case tiff
    case webp
    case bmp
    case heic
    /// NIQE's parameters (`.npz`: a zip of `.npy` arrays).
    case npz
    /// OpenCV YAML storage as BRISQUE's model and range files use it, packed as for `ncnn`:
    /// 2-byte little-endian length of the model text, the text, then the range text.
    case cvyaml
    /// A dlib network file (`dlib_face_recognition_resnet_model_v1.dat`'s structure).
    case dlib

    /// Limits for decoding under the fuzzer: small enough that a valid huge image is refused.
    static let limits = ImageLimits(maxWidth: 4096, maxHeight: 4096, maxPixels: 4_000_000)

    /// Runs the parser on `data`; returns whether it accepted it.
    @discardableResult
    public func run(_ data: Data) -> Bool {
        switch self {
        case .png, .jpeg:
            // Both reads: as cv2.IMREAD_COLOR and as cv2.IMREAD_GRAYSCALE (Deg.'s reads).
            let gray = (try? ImageIO.decodeGrayscale(data, path: "fuzz", limits: Self.limits)) != nil
            return (try? ImageIO.decode(data, path: "fuzz", limits: Self.limits)) != nil || gray
        case .tiff, .webp, .bmp, .heic:
            _ = try? ImageIO.probe(data, path: "fuzz", limits: Self.limits)
            if self == .tiff { Self.readBands(data) }
            guard let decoded = try? ImageIO.decode(data, path: "fuzz", limits: Self.limits) else { return false }
            // What a restored image's writer does with the metadata read.
            _ = decoded.metadata.forOutput(software: "fuzz")
            return true
        case .pth, .safetensors:
            let path = Self.scratch(rawValue)
            defer { try? FileManager.default.removeItem(atPath: path) }
            guard (try? data.write(to: URL(fileURLWithPath: path))) != nil else { return false }
            return (try? WeightsFile.load(path: path)) != nil
        case .onnx:
            let path = Self.scratch("onnx")
            defer { try? FileManager.default.removeItem(atPath: path) }
            guard (try? data.write(to: URL(fileURLWithPath: path))) != nil else { return false }
            return (try? ONNXModel(path: path)) != nil
        case .ncnn:
            let bytes = [UInt8](data)
            guard bytes.count >= 2 else { return false }
            let n = Int(bytes[0]) | Int(bytes[1]) << 8
            guard bytes.count >= 2 + n else { return false }
            let base = Self.scratch("ncnn")
            defer { for e in [".param", ".bin"] { try? FileManager.default.removeItem(atPath: base + e) } }
            guard (try? Data(bytes[2..<(2 + n)]).write(to: URL(fileURLWithPath: base + ".param"))) != nil,
                  (try? Data(bytes[(2 + n)...]).write(to: URL(fileURLWithPath: base + ".bin"))) != nil else { return false }
            return (try? NCNNModel(path: base + ".param")) != nil
        case .npz:
            let path = Self.scratch("npz")
            defer { try? FileManager.default.removeItem(atPath: path) }
            guard (try? data.write(to: URL(fileURLWithPath: path))) != nil else { return false }
            return (try? NIQEModel(contentsOf: path)) != nil
        case .cvyaml:
            let bytes = [UInt8](data)
            guard bytes.count >= 2 else { return false }
            let n = Int(bytes[0]) | Int(bytes[1]) << 8
            guard bytes.count >= 2 + n else { return false }
            let base = Self.scratch("cvyaml")
            defer { for e in [".model.yml", ".range.yml"] { try? FileManager.default.removeItem(atPath: base + e) } }
            guard (try? Data(bytes[2..<(2 + n)]).write(to: URL(fileURLWithPath: base + ".model.yml"))) != nil,
                  (try? Data(bytes[(2 + n)...]).write(to: URL(fileURLWithPath: base + ".range.yml"))) != nil else { return false }
            return (try? BRISQUEModel(modelPath: base + ".model.yml", rangePath: base + ".range.yml")) != nil
        case .dlib:
            let path = Self.scratch("dat")
            defer { try? FileManager.default.removeItem(atPath: path) }
            guard (try? data.write(to: URL(fileURLWithPath: path))) != nil else { return false }
            return (try? DlibNetwork(path: path, structure: DlibResNet.structure)) != nil
        }
    }

    /// A TIFF's rows in bands of 7 (crossing strips and tiles), from a file.
    static func readBands(_ data: Data) {
        let path = scratch("tif")
        defer { try? FileManager.default.removeItem(atPath: path) }
        guard (try? data.write(to: URL(fileURLWithPath: path))) != nil,
              let reader = try? TIFFBandReader(path: path, limits: limits, maxBlockBytes: 1 << 20) else { return }
        var y = 0
        while y < reader.height {
            let n = min(7, reader.height - y)
            guard (try? reader.read(y: y, count: n)) != nil else { return }
            y += n
        }
    }

    /// A scratch file for this thread (in memory where /dev/shm exists; removed after each run): parallel runs in one process (the regression tests run
    /// the targets concurrently) must not rewrite a file another thread has mapped.
    static func scratch(_ ext: String) -> String {
        let dir = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        return "\(dir)/facerestore-fuzz-\(getpid())-\(pthread_self()).\(ext)"
    }
}
