// What one restoration produced, and the files upstream writes for it: `restored_imgs/<name>.<ext>`
// (the whole photo), and per face `cropped_faces/<name>_<idx:02d>.png`, `restored_faces/…` and
// `cmp/…` (crop and restoration side by side), as gfpgan 1.3.8 `inference_gfpgan.py` names them.
// Aligned inputs write the three face folders as `<name>_00.png`; the offline fallback writes
// only `restored_imgs`. Every file is written atomically.

import FaceRestoreEngine
import FaceRestoreImaging
import FaceRestoreModels
import FaceRestorePipeline
import Foundation

/// The format of the restored whole image.
public enum OutputFormat: String, Sendable, CaseIterable {
    /// The input's extension (PNG when it has none), as upstream's `--ext auto`.
    case auto
    case png
    case jpg
}

/// How outputs are named and encoded.
public struct OutputOptions: Sendable, Equatable {
    public var format: OutputFormat = .auto
    /// Appended to restored file names (`--suffix`).
    public var suffix: String?
    /// Write only the restored whole image, not the per-face files.
    public var restoredImageOnly = false

    public init(format: OutputFormat = .auto, suffix: String? = nil, restoredImageOnly: Bool = false) {
        self.format = format
        self.suffix = suffix
        self.restoredImageOnly = restoredImageOnly
    }
}

/// One output file: where it goes under the output folder, and what it holds.
public struct OutputFile: Sendable {
    /// Path relative to the output folder, e.g. `restored_imgs/group.jpg`.
    public var relativePath: String
    public var image: PixelImage
    public var alpha: [UInt8]?
}

/// The result of restoring one image.
public struct RestoreResult: Sendable {
    /// The base of the output file names (the input's name without extension).
    public var name: String
    /// The input file, when restored from one.
    public var sourcePath: String?
    /// The input's format.
    public var format: ImageFormat
    /// The decoded input (BGR, EXIF orientation applied).
    public var original: PixelImage
    /// The input's alpha channel, if it had one.
    public var inputAlpha: [UInt8]?
    /// The restored whole image (nil for aligned face crops).
    public var image: PixelImage?
    /// The restored image's alpha channel (the input's, upscaled).
    public var alpha: [UInt8]?
    /// The whole-photo restoration: faces with boxes, landmarks, crops, restorations and inverse
    /// affines (nil for aligned crops and the offline fallback).
    public var photo: PhotoRestoration?
    /// The restoration of an aligned face crop.
    public var aligned: AlignedRestoration?
    public var timings = RestoreTimings()
    /// What was done differently from what was asked (the offline fallback, no parser, no face).
    public var warnings: [RestoreWarning] = []

    init(name: String, format: ImageFormat, original: PixelImage, inputAlpha: [UInt8]?) {
        self.name = name
        self.format = format
        self.original = original
        self.inputAlpha = inputAlpha
    }

    /// The restored faces (one for an aligned crop).
    public var faces: [RestoredFace] { photo?.faces ?? [] }

    /// Faces found by the detector, before the recipe's filters.
    public var detectedCount: Int { photo?.detectedCount ?? (aligned == nil ? 0 : 1) }

    /// The number of restored faces.
    public var restoredFaceCount: Int { photo?.faces.count ?? (aligned == nil ? 0 : 1) }

    /// The files upstream writes for this result.
    public func outputs(_ options: OutputOptions = OutputOptions()) -> [OutputFile] {
        let tail = options.suffix.map { "_" + $0 } ?? ""
        if let aligned {
            let face = name + "_00"
            return [OutputFile(relativePath: "cropped_faces/\(face).png", image: aligned.input),
                    OutputFile(relativePath: primaryPath(options), image: aligned.restored),
                    OutputFile(relativePath: "cmp/\(face).png", image: aligned.comparison)]
        }
        guard let image else { return [] }
        // The whole image first (the largest encode), then the faces' files.
        var files = [OutputFile(relativePath: primaryPath(options), image: image, alpha: alpha)]
        guard !options.restoredImageOnly else { return files }
        for (k, face) in faces.enumerated() {
            let base = "\(name)_\(k < 10 ? "0" : "")\(k)"
            files += [OutputFile(relativePath: "cropped_faces/\(base).png", image: face.cropped),
                      OutputFile(relativePath: "restored_faces/\(base)\(tail).png", image: face.restored),
                      OutputFile(relativePath: "cmp/\(base).png", image: face.comparison)]
        }
        return files
    }

    /// The restored image's path under the output folder (the restored face's for an aligned crop).
    func primaryPath(_ options: OutputOptions) -> String {
        Self.primaryPath(name: name, aligned: aligned != nil, suffix: options.suffix,
                         extension: fileExtension(options.format))
    }

    /// The restored image's path under the output folder for outputs named `name`; `extension`
    /// is the whole image's (aligned crops are always PNG).
    static func primaryPath(name: String, aligned: Bool, suffix: String?, extension ext: String) -> String {
        let tail = suffix.map { "_" + $0 } ?? ""
        return aligned ? "restored_faces/\(name)_00\(tail).png" : "restored_imgs/\(name)\(tail).\(ext)"
    }

    /// The restored image's extension for `format`.
    func fileExtension(_ format: OutputFormat) -> String {
        Self.fileExtension(format, sourcePath: sourcePath, inputFormat: self.format)
    }

    /// The restored image's extension for `format`, for an input read from `sourcePath` (or
    /// decoded from bytes in `inputFormat` when nil).
    static func fileExtension(_ format: OutputFormat, sourcePath: String?, inputFormat: ImageFormat?) -> String {
        switch format {
        case .png: return "png"
        case .jpg: return "jpg"
        case .auto:
            let ext = sourcePath.map { URL(fileURLWithPath: $0).pathExtension } ?? ""
            if !ext.isEmpty { return ext }
            return sourcePath == nil && inputFormat == .jpeg ? "jpg" : "png"
        }
    }

    /// Writes the restored image (the restored face for an aligned crop) to `path`, atomically,
    /// in the format its extension names, with the alpha channel when the input had one.
    public func writeImage(to path: String) throws {
        guard let image = image ?? aligned?.restored else {
            throw ImageError.encoding(path: path, reason: "nothing was restored")
        }
        try ImageIO.write(image, alpha: self.image == nil ? nil : alpha, to: path)
    }

    /// Why a folder cannot be created, in words: the part of the path that is a file, or the
    /// system's reason.
    static func folderProblem(_ path: String) -> String {
        var url = URL(fileURLWithPath: path).standardizedFileURL
        var chain: [URL] = [url]
        while url.path != "/" && !url.path.isEmpty {
            url = url.deletingLastPathComponent()
            chain.append(url)
        }
        for u in chain.reversed() {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: u.path, isDirectory: &isDir), !isDir.boolValue {
                return "\(u.path) is a file, not a folder"
            }
        }
        return mkdir(path, 0o755) == 0 ? "it could be created only on a second try" : String(cString: strerror(errno))
    }

    /// Writes the outputs under `folder` (creating the subfolders), atomically, encoding on up to
    /// `threads` threads; returns the paths written. The restored image (the restored face for an
    /// aligned crop) is written last, so that its presence means every file of the result is
    /// complete (what skipping finished inputs relies on).
    @discardableResult
    public func write(to folder: String, options: OutputOptions = OutputOptions(), threads: Int = 1) throws -> [String] {
        let files = outputs(options)
        for dir in Set(files.map { ($0.relativePath as NSString).deletingLastPathComponent }).sorted() {
            let path = folder + "/" + dir
            do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
                throw ImageError.io(path: path, reason: "cannot create the output folder (\(Self.folderProblem(path)))")
            }
        }
        let list = files.map { (image: $0.image, alpha: $0.alpha, path: folder + "/" + $0.relativePath) }
        let primary = folder + "/" + primaryPath(options)
        try ImageIO.write(list.filter { $0.path != primary }, threads: max(threads, 1))
        try ImageIO.write(list.filter { $0.path == primary }, threads: 1)
        return list.map(\.path)
    }
}
