// Restoring a photo too large to hold whole (a 100-megapixel 16-bit scan), from a TIFF read band
// by band, in three passes over the file:
//   1. detection: the photo shrunk by an integer factor k (block means) to at most
//      `detectionPixels`, the detector run on it and the landmarks mapped back ((p + ½)·k − ½);
//      with k = 1 the detector sees the photo as the in-memory path does;
//   2. faces: the source region each face's crop samples is kept from the bands, the crop warped
//      from it (the same values as from the whole photo), the face restored and its mask made;
//   3. output: the background made band by band (the recipe's LANCZOS4, upscale 1 being the photo
//      itself, or Real-ESRGAN one tile row at a time), the faces blended on float canvases over groups of overlapping regions as the
//      in-memory paste does, and rows handed on as soon as no unfinished group covers them.
// Memory: the detection copy, the faces' regions and restorations, a few source blocks, and the
// output rows under the tallest group of face regions.

import FaceRestoreEngine
import FaceRestoreImaging
import FaceRestoreModels
import Foundation

/// A restoration whose whole image is produced band by band from its source file when written.
public struct StreamedRestoration: Sendable {
    public var sourcePath: String
    public var limits: ImageLimits
    public var faces: [RestoredFace]
    public var detectedCount: Int
    public var upscale: Int
    public var weight: Double
    /// Source size and the restored image's size.
    public var sourceWidth: Int, sourceHeight: Int
    public var width: Int { sourceWidth * upscale }
    public var height: Int { sourceHeight * upscale }
    /// 16 for a 16-bit source (its samples kept where no face reaches), else 8.
    public var depth: Int
    /// Whether the restored image keeps 16 bits (a 16-bit source on the plain background; a
    /// Real-ESRGAN background is 8-bit).
    public var keeps16Bit: Bool
    /// The copy the detector saw (the photo shrunk by `detectionFactor`).
    public var preview: PixelImage
    public var detectionFactor: Int
    public var timings: RestoreTimings
    public var nonFiniteFaces: [Int] = []
}

extension PhotoRestorer {
    /// Why this restorer cannot stream a photo with `options`, or nil when it can: streaming
    /// covers the facexlib paste (GFP-GAN, RestoreFormer, CodeFormer's at upscale 1) on the
    /// plain or the Real-ESRGAN background, without a face upsampler or gray handling.
    public func streamingRefusal(options: PhotoOptions) -> String? {
        let upscale = options.upscale ?? recipe.defaultUpscale
        if faceUpsampler != nil { return "face upsampling is not streamed" }
        if recipe.blend != .sequential || recipe.detectsOnUpscaledPhoto { return "\(recipe.family) pastes on the whole photo" }
        if recipe.minimumPhotoSide != nil && upscale != 1 { return "\(recipe.family) resizes the whole photo" }
        if upscale != 1 && recipe.backgroundResize != .lanczos4 { return "\(recipe.family)'s background resize is not streamed" }
        if options.keepGray || recipe.grayFacesForGrayPhotos { return "gray handling looks at the whole photo" }
        return nil
    }

    /// Passes 1 and 2: detection on the shrunk copy, then each face cropped from its region of
    /// the file, restored and masked.
    public func restoreStreamed(_ reader: TIFFBandReader, options: PhotoOptions = PhotoOptions(), detectionPixels: Int = 6_000_000,
                                context: ComputeContext, progress: ((RestoreStage) -> Void)? = nil) throws -> StreamedRestoration {
        try options.validate()
        if let why = streamingRefusal(options: options) { throw PipelineError.invalidArgument("cannot stream this photo: \(why)") }
        let upscale = options.upscale ?? recipe.defaultUpscale
        let (W, H) = (reader.width, reader.height)
        var timings = RestoreTimings()
        // Pass 1.
        progress?(.decoding)
        let k = max(1, Int((Double(W) * Double(H) / Double(max(detectionPixels, 1))).squareRoot().rounded(.up)))
        let preview = try timings.measure(\.decode) { try Self.shrunkCopy(reader, factor: k) }
        progress?(.detecting)
        var (kept, detected) = try timings.measure(\.detect) { try self.faces(in: preview, options: options, context: context) }
        if k > 1 {
            let f = Float(k)
            for i in kept.indices {
                kept[i].landmarks = kept[i].landmarks.map { ($0 + 0.5) * f - 0.5 }
                kept[i].box = kept[i].box.map { $0 * f }
            }
        }
        // Pass 2: the source region each crop samples (its corners mapped back, 2 px of margin).
        let size = restorer.faceSize
        let template = recipe.templatePoints(size: size)
        var regions: [Rect?] = kept.map { face in
            let points = (0..<5).map { (x: Double(face.landmarks[2 * $0]), y: Double(face.landmarks[2 * $0 + 1])) }
            guard let (affine, _) = alignment(points, template, upscale: upscale) else { return nil }
            let back = affine.inverted().m
            var (x0, x1, y0, y1) = (Double.infinity, -Double.infinity, Double.infinity, -Double.infinity)
            for (cx, cy) in [(0.0, 0.0), (Double(size), 0.0), (0.0, Double(size)), (Double(size), Double(size))] {
                let px: Double = back[0] * cx + back[1] * cy + back[2]
                let py: Double = back[3] * cx + back[4] * cy + back[5]
                (x0, x1, y0, y1) = (min(x0, px), max(x1, px), min(y0, py), max(y1, py))
            }
            guard [x0, x1, y0, y1].allSatisfy({ $0.isFinite && abs($0) < 1e9 }) else { return nil }
            let left = max(Int(x0.rounded(.down)) - 2, 0), top = max(Int(y0.rounded(.down)) - 2, 0)
            let right = min(Int(x1.rounded(.up)) + 3, W), bottom = min(Int(y1.rounded(.up)) + 3, H)
            guard right > left, bottom > top else { return nil }
            return Rect(x: left, y: top, width: right - left, height: bottom - top)
        }
        var pieces: [[UInt8]] = regions.map { r in r.map { [UInt8](repeating: 0, count: $0.width * $0.height * 3) } ?? [] }
        if let first = regions.compactMap({ $0?.y }).min(), let last = regions.compactMap({ $0.map { $0.y + $0.height } }).max() {
            try timings.measure(\.decode) {
                var y = first - first % reader.blockRows
                while y < last {
                    let count = min(reader.blockRows, H - y)
                    let band = try reader.read(y: y, count: count).image
                    for (i, r) in regions.enumerated() {
                        guard let r, r.y < y + count, r.y + r.height > y else { continue }
                        for yy in max(r.y, y)..<min(r.y + r.height, y + count) {
                            let src = ((yy - y) * W + r.x) * 3, dst = (yy - r.y) * r.width * 3
                            pieces[i].replaceSubrange(dst..<(dst + r.width * 3), with: band.pixels[src..<(src + r.width * 3)])
                        }
                    }
                    y += count
                }
            }
        }
        ProcessTuning.returnFreedMemory()
        var faces: [RestoredFace] = []
        var nonFinite: [Int] = []
        for (i, face) in kept.enumerated() {
            progress?(.restoringFace(i, of: kept.count))
            guard let r = regions[i] else { continue }
            let piece = PixelImage(width: r.width, height: r.height, channels: 3, pixels: pieces[i])
            pieces[i] = []
            regions[i] = nil
            do {
                let crop: (AffineMatrix) -> PixelImage = {
                    piece.warpedAffine($0, width: size, height: size, border: self.recipe.cropBorder, within: (r.x, r.y, W, H))
                }
                if let restored = try restoreFace(face, upscale: upscale, gray: false, options: options, context: context, timings: &timings,
                                                  crop: crop) {
                    faces.append(restored)
                }
            } catch EngineError.nonFinite {
                nonFinite.append(i)
            }
            // The networks' freed activations, kept in the heap for the next face, interleave
            // with the faces' regions: returned here, the peak stays that of one face.
            ProcessTuning.returnFreedMemory()
        }
        return StreamedRestoration(sourcePath: reader.path, limits: ImageLimits(maxWidth: W, maxHeight: H, maxPixels: W * H),
                                   faces: faces, detectedCount: detected, upscale: upscale, weight: options.weight,
                                   sourceWidth: W, sourceHeight: H, depth: reader.depth, keeps16Bit: reader.depth == 16 && background == nil, preview: preview, detectionFactor: k,
                                   timings: timings, nonFiniteFaces: nonFinite)
    }

    /// The photo shrunk by `factor` (the mean of each factor × factor block, rounded; the last
    /// partial blocks dropped), read band by band; the photo itself for factor 1.
    static func shrunkCopy(_ reader: TIFFBandReader, factor k: Int) throws -> PixelImage {
        let (W, H) = (reader.width, reader.height)
        let (w, h) = (max(W / k, 1), max(H / k, 1))
        var out = [UInt8](repeating: 0, count: w * h * 3)
        var sums = [UInt32](repeating: 0, count: w * 3)
        let area = UInt32(min(k, W) * min(k, H))
        var y = 0
        while y < min(h * k, H) {
            let count = min(reader.blockRows, H - y)
            let band = try reader.read(y: y, count: count).image
            if k == 1 {
                out.replaceSubrange((y * W * 3)..<((y + count) * W * 3), with: band.pixels)
            } else {
                for yy in y..<min(y + count, h * k) {
                    let row = (yy - y) * W * 3
                    for x in 0..<(min(w * k, W)) {
                        for c in 0..<3 { sums[(x / k) * 3 + c] += UInt32(band.pixels[row + x * 3 + c]) }
                    }
                    if yy % k == k - 1 || yy == H - 1 {
                        let oy = yy / k
                        for i in 0..<(w * 3) { out[oy * w * 3 + i] = UInt8(min((sums[i] + area / 2) / area, 255)); sums[i] = 0 }
                    }
                }
            }
            y += count
        }
        return PixelImage(width: w, height: h, channels: 3, pixels: out)
    }

    /// Pass 3, 8-bit: the restored image's rows, top to bottom, handed to `sink` in bands
    /// (8-bit samples: the 16-bit source reduced, as the in-memory `image`).
    public func streamRows(_ r: StreamedRestoration, context: ComputeContext, sink: @escaping (PixelImage) throws -> Void) throws {
        let reader = try reopen(r)
        let (W, H, row) = (r.sourceWidth, r.sourceHeight, r.width * 3)
        let assembler = try bandAssembler(r, zero: UInt8(0), blend: { rows, y0, faces, pasted in
            var band = PixelImage(width: r.width, height: rows.count / row, channels: 3, pixels: rows)
            rows = []
            self.blendSequential(faces, pasted, width: r.width, height: r.height, upscale: r.upscale) {
                Canvas(rect: $0, from: band, imageY: y0)
            }.truncate(into: &band, imageY: y0)
            rows = band.pixels
        }, emit: { try sink(PixelImage(width: r.width, height: $0.count / row, channels: 3, pixels: $0)) })
        if let background {
            // facexlib: `bg_upsampler.enhance(img, outscale=upscale)`: the network's rows, then
            // LANCZOS4 to the output size when its scale is not the upscale.
            let s = background.scale
            var lanczos = s == r.upscale ? nil
                : LanczosRows(sourceWidth: W * s, sourceHeight: H * s, width: r.width, height: r.height, channels: 3)
            // The network's rows not yet resized, as the tile rows it emitted (kept, not copied);
            // after each resize only the few rows later output rows still read are kept, copied out
            // of their tile row so that its buffer is freed before the next one is made.
            let netRow = W * s * 3
            var held: [(y: Int, rows: [UInt8])] = [], made = 0, next = 0
            func heldRow(_ sy: Int) -> ArraySlice<UInt8> {
                let c = held.last { $0.y <= sy } ?? held[0]
                return c.rows[((sy - c.y) * netRow)..<((sy - c.y + 1) * netRow)]
            }
            func resizeReady(final: Bool) throws {
                guard var resizer = lanczos else { return }
                var band: [UInt8] = []
                while next < r.height, final || resizer.sourceRows(next).upperBound < made {
                    var out = [UInt8](repeating: 0, count: row)
                    out.withUnsafeMutableBufferPointer { o in resizer.row(next, into: o) { heldRow($0) } }
                    band += out
                    next += 1
                }
                lanczos = resizer
                if !band.isEmpty { try assembler.push(band) }
                // Network rows no later output row reads.
                if next < r.height {
                    let keep = resizer.sourceRows(next).lowerBound
                    held.removeAll { $0.y + $0.rows.count / netRow <= keep }
                    if let first = held.first, keep > first.y { held[0] = (keep, Array(first.rows[((keep - first.y) * netRow)...])) }
                }
            }
            try background.enhanceRows(width: W, height: H, context: context, rows: { y, n in try reader.read(y: y, count: n).image },
                                       emit: { _, band in
                                           if lanczos == nil { return try assembler.push(band.pixels) }
                                           held.append((made, band.pixels))
                                           made += band.height
                                           try resizeReady(final: false)
                                       })
            try resizeReady(final: true)
        } else if r.upscale == 1 {
            try pushBlocks(reader, to: assembler) { try $0.read(y: $1, count: $2).image.pixels }
        } else {
            var resizer = LanczosRows(sourceWidth: W, sourceHeight: H, width: r.width, height: r.height, channels: 3)
            let source = SourceRows(reader) { try $0.read(y: $1, count: $2).image.pixels }
            try resizeBands(r, zero: UInt8(0), assembler: assembler) { dy, out in
                try source.prepare(resizer.sourceRows(dy))
                resizer.row(dy, into: out) { source.row($0) }
            }
        }
        try assembler.finish()
    }

    /// Pass 3, 16-bit (a 16-bit source with the plain background): as `streamRows`, the source's
    /// samples kept where no face's mask reaches (as `composite16`).
    public func streamRows16(_ r: StreamedRestoration, sink: @escaping (PixelImage16) throws -> Void) throws {
        let reader = try reopen(r)
        guard reader.depth == 16, background == nil else {
            throw ImageError.decoding(path: r.sourcePath, reason: "no 16-bit output: the file is not 16-bit or the background is Real-ESRGAN's")
        }
        let (W, H, row) = (r.sourceWidth, r.sourceHeight, r.width * 3)
        let assembler = try bandAssembler(r, zero: UInt16(0), blend: { rows, y0, faces, pasted in
            var band = PixelImage16(width: r.width, height: rows.count / row, channels: 3, pixels: rows)
            rows = []
            self.blendSequential(faces, pasted, width: r.width, height: r.height, upscale: r.upscale) {
                Canvas(rect: $0, from: band, imageY: y0)
            }.write16(into: &band, imageY: y0)
            rows = band.pixels
        }, emit: { try sink(PixelImage16(width: r.width, height: $0.count / row, channels: 3, pixels: $0)) })
        if r.upscale == 1 {
            try pushBlocks(reader, to: assembler) { try $0.read(y: $1, count: $2).image16?.pixels ?? [] }
        } else {
            var resizer = LanczosRows16(sourceWidth: W, sourceHeight: H, width: r.width, height: r.height, channels: 3)
            let source = SourceRows(reader) { try $0.read(y: $1, count: $2).image16?.pixels ?? [] }
            try resizeBands(r, zero: UInt16(0), assembler: assembler) { dy, out in
                try source.prepare(resizer.sourceRows(dy))
                resizer.row(dy, into: out) { source.row($0) }
            }
        }
        try assembler.finish()
    }

    private func reopen(_ r: StreamedRestoration) throws -> TIFFBandReader {
        guard let reader = try TIFFBandReader(path: r.sourcePath, limits: r.limits),
              reader.width == r.sourceWidth, reader.height == r.sourceHeight else {
            throw ImageError.decoding(path: r.sourcePath, reason: "the file changed since it was read")
        }
        return reader
    }

    /// The source's rows, a block at a time, as the output (upscale 1).
    private func pushBlocks<T>(_ reader: TIFFBandReader, to assembler: BandAssembler<T>,
                               read: (TIFFBandReader, Int, Int) throws -> [T]) throws {
        var y = 0
        while y < reader.height {
            let n = min(reader.blockRows, reader.height - y)
            try assembler.push(try read(reader, y, n))
            y += n
        }
    }

    /// Output rows made `row(dy, into:)` in bands of 64, pushed to `assembler`.
    private func resizeBands<T>(_ r: StreamedRestoration, zero: T, assembler: BandAssembler<T>,
                                row make: (Int, UnsafeMutableBufferPointer<T>) throws -> Void) throws {
        let width = r.width * 3
        var y = 0
        while y < r.height {
            let n = min(64, r.height - y)
            var band = [T](repeating: zero, count: n * width)
            try band.withUnsafeMutableBufferPointer { out in
                for dy in 0..<n { try make(y + dy, UnsafeMutableBufferPointer(rebasing: out[(dy * width)..<((dy + 1) * width)])) }
            }
            try assembler.push(band)
            y += n
        }
    }

    /// The faces of `r` grouped for pass 3 and the assembler that blends them into pushed rows.
    private func bandAssembler<T>(_ r: StreamedRestoration, zero: T, blend: @escaping (inout [T], Int, [RestoredFace], [PixelImage]) -> Void,
                                  emit: @escaping ([T]) throws -> Void) throws -> BandAssembler<T> {
        ProcessTuning.returnFreedMemory()
        let faces = r.faces
        let pasted = faces.map { pastedFace($0, weight: $0.weight ?? r.weight) }
        let rois = regions(faces, pasted, width: r.width, height: r.height, upscale: r.upscale)
        // Groups of faces whose regions' bounding rectangles overlap, merged until none do: each
        // group's canvas then covers pixels no other group's faces reach.
        var groups: [(rect: Rect, members: [Int])] = rois.enumerated().map { ($1, [$0]) }
        var merged = true
        while merged {
            merged = false
            outer: for a in groups.indices {
                for b in groups.indices where b > a && groups[a].rect.intersects(groups[b].rect) {
                    groups[a] = (groups[a].rect.union(groups[b].rect), (groups[a].members + groups[b].members).sorted())
                    groups.remove(at: b)
                    merged = true
                    break outer
                }
            }
        }
        return BandAssembler(width: r.width * 3, height: r.height, groups: groups.sorted { $0.rect.y < $1.rect.y }.map { g in
            (g.rect, g.members.map { faces[$0] }, g.members.map { pasted[$0] })
        }, blend: blend, emit: emit)
    }
}

/// Source rows for a row resizer, read a block at a time and kept while later rows need them.
private final class SourceRows<T> {
    let reader: TIFFBandReader
    let read: (TIFFBandReader, Int, Int) throws -> [T]
    private var rows: [T] = []
    private var first = 0, count = 0

    init(_ reader: TIFFBandReader, read: @escaping (TIFFBandReader, Int, Int) throws -> [T]) {
        self.reader = reader
        self.read = read
    }

    /// Makes rows `needed` available (they only move down).
    func prepare(_ needed: ClosedRange<Int>) throws {
        let width = reader.width * 3
        if needed.lowerBound > first {
            let drop = min(needed.lowerBound - first, count)
            rows.removeFirst(drop * width)
            first += drop
            count -= drop
        }
        while first + count <= needed.upperBound {
            let y = first + count
            let n = min(reader.blockRows - y % reader.blockRows, reader.height - y)
            rows += try read(reader, y, n)
            count += n
        }
    }

    func row(_ y: Int) -> ArraySlice<T> {
        let width = reader.width * 3
        return rows[((y - first) * width)..<((y - first + 1) * width)]
    }
}

/// Pass 3's output rows: pushed in order, each group of faces blended once all its rows are
/// here, and rows handed on as soon as no unfinished group covers them.
final class BandAssembler<T> {
    let width: Int, height: Int
    private var open: [(rect: Rect, faces: [RestoredFace], pasted: [PixelImage])]
    private let blend: (inout [T], Int, [RestoredFace], [PixelImage]) -> Void
    private let emit: ([T]) throws -> Void
    private var pending: [T] = []
    private var pendingY = 0, produced = 0

    init(width: Int, height: Int, groups: [(rect: Rect, faces: [RestoredFace], pasted: [PixelImage])],
         blend: @escaping (inout [T], Int, [RestoredFace], [PixelImage]) -> Void, emit: @escaping ([T]) throws -> Void) {
        (self.width, self.height, open, self.blend, self.emit) = (width, height, groups, blend, emit)
    }

    func push(_ rows: [T]) throws {
        guard rows.count % width == 0, produced + rows.count / width <= height else {
            throw PipelineError.invalidArgument("a band of \(rows.count) values does not fit the \(width / 3)-wide output")
        }
        pending += rows
        produced += rows.count / width
        while let g = open.firstIndex(where: { $0.rect.y + $0.rect.height <= produced }) {
            let group = open.remove(at: g)
            blend(&pending, pendingY, group.faces, group.pasted)
        }
        let ready = min(open.map(\.rect.y).min() ?? produced, produced)
        if ready > pendingY {
            let n = (ready - pendingY) * width
            try emit(Array(pending[0..<n]))
            pending.removeFirst(n)
            pendingY = ready
        }
    }

    func finish() throws {
        guard produced == height, open.isEmpty, pending.isEmpty else {
            throw PipelineError.invalidArgument("the output ended at row \(produced) of \(height)")
        }
    }
}

extension Rect {
    func intersects(_ o: Rect) -> Bool {
        x < o.x + o.width && o.x < x + width && y < o.y + o.height && o.y < y + height
    }
}
