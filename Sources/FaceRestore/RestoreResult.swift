// What one restoration produced, and the files upstream writes for it: `restored_imgs/<name>.<ext>`
// (the whole photo), and per face `cropped_faces/<name>_<idx:02d>.png`, `restored_faces/…` and
// `cmp/…` (crop and restoration side by side), as gfpgan 1.3.8 `inference_gfpgan.py` names them.
// Aligned inputs write the three face folders as `<name>_00.png`; the offline fallback writes
// only `restored_imgs`. Every file is written atomically. The restored whole image carries the
// input's metadata (EXIF with the orientation reset and a Software tag, ICC, XMP, IPTC,
// resolution) in its format's native way; the face files carry none.

import FaceRestoreEngine
import FaceRestoreImaging
import FaceRestoreModels
import FaceRestorePipeline
import Foundation

/// The format of the restored whole image.
public enum OutputFormat: String, Sendable, CaseIterable {
    /// The input's extension (PNG when it has none), as upstream's `--ext auto`; HEIF inputs
    /// (read only) are written as JPEG.
    case auto
    case png
    case jpg
    /// Deflate with the horizontal predictor; 16-bit when the result carries 16-bit samples.
    case tiff
    /// Lossless when the input was lossless, else lossy at quality 95: re-encoding a lossy photo
    /// losslessly multiplies its size without bringing back what its encoder dropped.
    case webp
    /// 24-bit, or 32-bit with the alpha channel.
    case bmp
}

/// How outputs are named and encoded.
public struct OutputOptions: Sendable, Equatable {
    public var format: OutputFormat = .auto
    /// Appended to restored file names (`--suffix`).
    public var suffix: String?
    /// Write only the restored whole image, not the per-face files.
    public var restoredImageOnly = false
    /// Leave the input's metadata out of the restored image: only the Software tag (FaceRestore
    /// and the model) is written.
    public var stripMetadata = false

    public init(format: OutputFormat = .auto, suffix: String? = nil, restoredImageOnly: Bool = false, stripMetadata: Bool = false) {
        self.format = format
        self.suffix = suffix
        self.restoredImageOnly = restoredImageOnly
        self.stripMetadata = stripMetadata
    }
}

/// One output file: where it goes under the output folder, and what it holds.
public struct OutputFile: Sendable {
    /// Path relative to the output folder, e.g. `restored_imgs/group.jpg`.
    public var relativePath: String
    public var image: PixelImage
    public var alpha: [UInt8]?
    /// 16-bit samples written instead of `image` where the format holds them (PNG, TIFF).
    public var image16: PixelImage16?
    public var alpha16: [UInt16]?
    /// How the file is encoded, metadata included (the restored whole image only).
    public var encoding = EncodeOptions()

    public init(relativePath: String, image: PixelImage, alpha: [UInt8]? = nil) {
        self.relativePath = relativePath
        self.image = image
        self.alpha = alpha
    }
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
    /// The input's metadata, written into the restored whole image (see `OutputOptions.stripMetadata`).
    public var metadata = ImageMetadata()
    /// The model that restored it, named in the output's Software tag.
    public var modelName: String?
    /// Whether the input's encoding was lossless (WebP outputs follow it).
    public var sourceLossless = true
    /// The restored whole image in 16 bits (BGR), for a 16-bit input: the input's 16-bit samples
    /// resized and the faces blended in (`PhotoRestorer.composite16`); PNG and TIFF outputs then
    /// keep 16 bits, other formats and the face files take `image`. Nil for 8-bit inputs and
    /// where no 16-bit composite exists (see `composite16`).
    public var image16: PixelImage16?
    /// The input's 16-bit samples (kept so a re-blend composites again).
    public var original16: PixelImage16?
    /// The 16-bit alpha channel to go with `image16`.
    public var alpha16: [UInt16]?

    /// A photo restored band by band from its file (a large TIFF): the faces are here and the
    /// whole image is produced from the file when written (`write(to:)`, `writeImage(to:)`);
    /// `image` is nil and `original` is the shrunk copy the detector saw.
    public var streamed: StreamedRestoration?
    /// The pipeline that writes `streamed`, and the threads it runs a Real-ESRGAN background on.
    var streamer: PhotoRestorer?
    var streamContext: ComputeContext?

    /// The Software tag of restored images: FaceRestore and the model.
    public var software: String { "FaceRestore" + (modelName.map { " (\($0))" } ?? "") }

    init(name: String, format: ImageFormat, original: PixelImage, inputAlpha: [UInt8]?) {
        self.name = name
        self.format = format
        self.original = original
        self.inputAlpha = inputAlpha
    }

    /// The restored faces (one for an aligned crop).
    public var faces: [RestoredFace] { photo?.faces ?? streamed?.faces ?? [] }

    /// Faces found by the detector, before the recipe's filters.
    public var detectedCount: Int { photo?.detectedCount ?? streamed?.detectedCount ?? (aligned == nil ? 0 : 1) }

    /// The number of restored faces.
    public var restoredFaceCount: Int { photo?.faces.count ?? streamed?.faces.count ?? (aligned == nil ? 0 : 1) }

    /// The files upstream writes for this result.
    public func outputs(_ options: OutputOptions = OutputOptions()) -> [OutputFile] {
        let tail = options.suffix.map { "_" + $0 } ?? ""
        if let aligned {
            let face = name + "_00"
            return [OutputFile(relativePath: "cropped_faces/\(face).png", image: aligned.input),
                    OutputFile(relativePath: primaryPath(options), image: aligned.restored),
                    OutputFile(relativePath: "cmp/\(face).png", image: aligned.comparison)]
        }
        var files: [OutputFile] = []
        if let image {
            // The whole image first (the largest encode), then the faces' files.
            var whole = OutputFile(relativePath: primaryPath(options), image: image, alpha: alpha)
            whole.encoding = encoding(options)
            if let wide = image16, wide.width == image.width, wide.height == image.height {
                whole.image16 = wide
                whole.alpha16 = alpha16
            }
            files.append(whole)
        } else if streamed == nil {
            return []
        }
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

    /// How the restored whole image is encoded: its metadata (the input's, or only the Software
    /// tag), and WebP's lossless or lossy mode following the input.
    func encoding(_ options: OutputOptions) -> EncodeOptions {
        EncodeOptions(webpQuality: sourceLossless ? nil : 95, metadata: metadata.forOutput(software: software, strip: options.stripMetadata))
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
        case .tiff: return "tif"
        case .webp: return "webp"
        case .bmp: return "bmp"
        case .auto:
            let ext = sourcePath.map { URL(fileURLWithPath: $0).pathExtension } ?? ""
            if let f = ImageFormat(extension: ext), !f.isWritable { return "jpg" }
            if !ext.isEmpty { return ext }
            if inputFormat == .heic { return "jpg" }
            if sourcePath == nil, let f = inputFormat, f != .png { return f.fileExtension }
            return "png"
        }
    }

    /// Writes the restored image (the restored face for an aligned crop) to `path`, atomically,
    /// in the format its extension names, with the alpha channel when the input had one.
    public func writeImage(to path: String) throws {
        if image == nil, let streamed, let streamer { return try Self.writeStreamed(streamed, with: streamer, context: streamContext ?? ComputeContext(threads: 1), to: path, options: encoding(OutputOptions())) }
        guard let image = image ?? aligned?.restored else {
            throw ImageError.encoding(path: path, reason: "nothing was restored")
        }
        guard self.image != nil else { return try ImageIO.write(image, to: path) }
        let wide = image16.flatMap { $0.width == image.width && $0.height == image.height ? $0 : nil }
        try ImageIO.write(ImageOutput(image: image, alpha: alpha, image16: wide, alpha16: wide == nil ? nil : alpha16, path: path,
                                      options: encoding(OutputOptions())))
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
        if streamed != nil {
            let path = folder + "/" + primaryPath(options)
            let dir = (path as NSString).deletingLastPathComponent
            do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                throw ImageError.io(path: dir, reason: "cannot create the output folder (\(Self.folderProblem(dir)))")
            }
        }
        let list = files.map {
            ImageOutput(image: $0.image, alpha: $0.alpha, image16: $0.image16, alpha16: $0.alpha16, path: folder + "/" + $0.relativePath,
                        options: $0.encoding)
        }
        let primary = folder + "/" + primaryPath(options)
        try ImageIO.write(list.filter { $0.path != primary }, threads: max(threads, 1))
        try ImageIO.write(list.filter { $0.path == primary }, threads: 1)
        if image == nil, let streamed, let streamer {
            try Self.writeStreamed(streamed, with: streamer, context: streamContext ?? ComputeContext(threads: max(threads, 1)), to: primary,
                                   options: encoding(options))
            return list.map(\.path) + [primary]
        }
        return list.map(\.path)
    }

    /// A streamed restoration's whole image: a TIFF written band by band as it is produced
    /// (16-bit for a 16-bit source); another format assembled whole, then encoded.
    static func writeStreamed(_ r: StreamedRestoration, with photo: PhotoRestorer, context: ComputeContext, to path: String,
                              options: EncodeOptions) throws {
        let ext = URL(fileURLWithPath: path).pathExtension
        guard let format = ImageFormat(extension: ext), format.isWritable else {
            throw ImageError.encoding(path: path, reason: "unknown output extension '.\(ext)' (use .png, .jpg, .tif, .webp or .bmp)")
        }
        let wide = r.keeps16Bit && format.holds16Bit
        if format == .tiff {
            let writer = try TIFFRowWriter(path: path, width: r.width, height: r.height, depth: wide ? 16 : 8, options: options)
            if wide { try photo.streamRows16(r) { try writer.write($0) } } else { try photo.streamRows(r, context: context) { try writer.write($0) } }
            try writer.finish()
            return
        }
        if wide {
            var pixels: [UInt16] = []
            try photo.streamRows16(r) { pixels += $0.pixels }
            let image16 = PixelImage16(width: r.width, height: r.height, channels: 3, pixels: pixels)
            try ImageIO.write(ImageOutput(image: image16.reducedTo8Bit, image16: image16, path: path, options: options))
        } else {
            var pixels: [UInt8] = []
            try photo.streamRows(r, context: context) { pixels += $0.pixels }
            try ImageIO.write(ImageOutput(image: PixelImage(width: r.width, height: r.height, channels: 3, pixels: pixels), path: path, options: options))
        }
    }
}
