// Restoring a photo too large to hold whole (a 100-megapixel 16-bit scan), from a TIFF read band
// by band, in three passes over the file:
//   1. detection: the photo shrunk by an integer factor k (block means) to at most
//      `detectionPixels`, the detector run on it and the landmarks mapped back ((p + ½)·k − ½);
//      with k = 1 the detector sees the photo as the in-memory path does;
//   2. faces: the source region each face's crop samples is kept from the bands, the crop warped
//      from it (the same values as from the whole photo), the face restored and its mask made;
//   3. output: the background resized band by band (the recipe's LANCZOS4; upscale 1 is the photo
//      itself), the faces blended on float canvases over groups of overlapping regions as the
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
    /// The copy the detector saw (the photo shrunk by `detectionFactor`).
    public var preview: PixelImage
    public var detectionFactor: Int
    public var timings: RestoreTimings
    public var nonFiniteFaces: [Int] = []
}

extension PhotoRestorer {
    /// Why this restorer cannot stream a photo with `options`, or nil when it can: streaming
    /// covers the facexlib paste (GFP-GAN, RestoreFormer, CodeFormer's at upscale 1) without a
    /// Real-ESRGAN background or face upsampler, and without gray handling.
    public func streamingRefusal(options: PhotoOptions) -> String? {
        let upscale = options.upscale ?? recipe.defaultUpscale
        if background != nil { return "a Real-ESRGAN background is computed whole" }
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
                                   sourceWidth: W, sourceHeight: H, depth: reader.depth, preview: preview, detectionFactor: k,
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
    public func streamRows(_ r: StreamedRestoration, sink: (PixelImage) throws -> Void) throws {
        guard let reader = try TIFFBandReader(path: r.sourcePath, limits: r.limits) else {
            throw ImageError.decoding(path: r.sourcePath, reason: "the file can no longer be read in bands")
        }
        var resizer = LanczosRows(sourceWidth: r.sourceWidth, sourceHeight: r.sourceHeight, width: r.width, height: r.height, channels: 3)
        try streamBands(r, reader: reader, zero: UInt8(0), read: { try reader.read(y: $0, count: $1).image.pixels },
                        resize: { dy, out, source in resizer.row(dy, into: out, source: source) },
                        blend: { rows, y0, faces, pasted, rect in
                            var band = PixelImage(width: r.width, height: rows.count / (r.width * 3), channels: 3, pixels: rows)
                            rows = []
                            self.blendSequential(faces, pasted, width: r.width, height: r.height, upscale: r.upscale) {
                                Canvas(rect: $0, from: band, imageY: y0)
                            }.truncate(into: &band, imageY: y0)
                            rows = band.pixels
                        },
                        emit: { try sink(PixelImage(width: r.width, height: $0.count / (r.width * 3), channels: 3, pixels: $0)) })
    }

    /// Pass 3, 16-bit (a 16-bit source): as `streamRows`, the source's samples kept where no
    /// face's mask reaches (as `composite16`).
    public func streamRows16(_ r: StreamedRestoration, sink: (PixelImage16) throws -> Void) throws {
        guard let reader = try TIFFBandReader(path: r.sourcePath, limits: r.limits) else {
            throw ImageError.decoding(path: r.sourcePath, reason: "the file can no longer be read in bands")
        }
        guard reader.depth == 16 else { throw ImageError.decoding(path: r.sourcePath, reason: "the file is no longer 16-bit") }
        var resizer = LanczosRows16(sourceWidth: r.sourceWidth, sourceHeight: r.sourceHeight, width: r.width, height: r.height, channels: 3)
        try streamBands(r, reader: reader, zero: UInt16(0), read: { try reader.read(y: $0, count: $1).image16?.pixels ?? [] },
                        resize: { dy, out, source in resizer.row(dy, into: out, source: source) },
                        blend: { rows, y0, faces, pasted, rect in
                            var band = PixelImage16(width: r.width, height: rows.count / (r.width * 3), channels: 3, pixels: rows)
                            rows = []
                            self.blendSequential(faces, pasted, width: r.width, height: r.height, upscale: r.upscale) {
                                Canvas(rect: $0, from: band, imageY: y0)
                            }.write16(into: &band, imageY: y0)
                            rows = band.pixels
                        },
                        emit: { try sink(PixelImage16(width: r.width, height: $0.count / (r.width * 3), channels: 3, pixels: $0)) })
    }

    /// The band loop of pass 3 over samples of type T (rows of r.width × 3 values).
    private func streamBands<T>(_ r: StreamedRestoration, reader: TIFFBandReader, zero: T,
                                read: @escaping (Int, Int) throws -> [T],
                                resize: @escaping (Int, UnsafeMutableBufferPointer<T>, (Int) -> ArraySlice<T>) -> Void,
                                blend: (inout [T], Int, [RestoredFace], [PixelImage], Rect) -> Void,
                                emit: ([T]) throws -> Void) throws {
        ProcessTuning.returnFreedMemory()
        let (OW, OH, row) = (r.width, r.height, r.width * 3)
        // Groups of faces whose regions' bounding rectangles overlap, merged until none do:
        // each group's canvas then covers pixels no other group's faces reach.
        let faces = r.faces
        let pasted = faces.map { pastedFace($0, weight: $0.weight ?? r.weight) }
        let rois = regions(faces, pasted, width: OW, height: OH, upscale: r.upscale)
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
        var open = groups.sorted { $0.rect.y < $1.rect.y }
        // Pending output rows from `pendingY`.
        var pending: [T] = []
        var pendingY = 0
        var produced = 0
        // Source rows for the resizer: the block holding the row asked for.
        var block: [T] = []
        var blockY = 0, blockCount = 0
        func sourceRow(_ sy: Int) -> ArraySlice<T> {
            if sy < blockY || sy >= blockY + blockCount {
                blockY = sy - sy % reader.blockRows
                blockCount = min(reader.blockRows, r.sourceHeight - blockY)
                do { block = try read(blockY, blockCount) } catch { readError = error; block = [T](repeating: zero, count: blockCount * r.sourceWidth * 3) }
            }
            let s = (sy - blockY) * r.sourceWidth * 3
            return block[s..<(s + r.sourceWidth * 3)]
        }
        var readError: Error?
        while produced < OH {
            // The next band of background rows.
            let count: Int
            if r.upscale == 1 {
                count = min(reader.blockRows, OH - produced)
                pending += try read(produced, count)
            } else {
                count = min(max(reader.blockRows * r.upscale, 64), OH - produced)
                var band = [T](repeating: zero, count: count * row)
                band.withUnsafeMutableBufferPointer { out in
                    for dy in 0..<count {
                        resize(produced + dy, UnsafeMutableBufferPointer(rebasing: out[(dy * row)..<((dy + 1) * row)]), sourceRow)
                    }
                }
                if let readError { throw readError }
                pending += band
            }
            produced += count
            // Groups whose rows are all here: blend them.
            while let g = open.firstIndex(where: { $0.rect.y + $0.rect.height <= produced }) {
                let group = open.remove(at: g)
                blend(&pending, pendingY, group.members.map { faces[$0] }, group.members.map { pasted[$0] }, group.rect)
            }
            // Rows above every unfinished group are final.
            let ready = min(open.map(\.rect.y).min() ?? produced, produced)
            if ready > pendingY {
                let n = (ready - pendingY) * row
                try emit(Array(pending[0..<n]))
                pending.removeFirst(n)
                pendingY = ready
            }
        }
    }
}

extension Rect {
    func intersects(_ o: Rect) -> Bool {
        x < o.x + o.width && o.x < x + width && y < o.y + o.height && o.y < y + height
    }
}
