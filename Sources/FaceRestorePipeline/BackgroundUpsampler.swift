// Real-ESRGAN image restoration as realesrgan 0.3.0's `RealESRGANer` runs it
// (`realesrgan/utils.py`: pre_process, tile_process, post_process, enhance): the 8-bit BGR image
// scaled to [0, 1] RGB, reflect-padded by `pre_pad` on the right and bottom and, for the x2 (x1)
// network, to a multiple of 2 (4); cut into `tile`² tiles (row-major) each read with `tile_pad`
// pixels of context and written back without blending; cropped; clamped to [0, 1]; ×255 and
// rounded half to even; an alpha channel goes through the network as gray→RGB→gray like
// upstream's `alpha_upsampler='realesrgan'`; and `outscale` ≠ scale is reached by INTER_LANCZOS4.
// Tiles are quantized to 8 bits as they are written (the post-processing is per pixel), so only
// one tile of float output is alive at a time.

import FaceRestoreEngine
import FaceRestoreImaging
import FaceRestoreModels
import FaceRestoreWeights
import Foundation

/// A Real-ESRGAN network (RRDBNet or SRVGGNetCompact) with upstream's tiling. Immutable and `Sendable`.
public struct RealESRGANer: Sendable {
    public enum Network: Sendable {
        case rrdb(RRDBNet)
        case srvgg(SRVGGNetCompact)
    }

    public let network: Network
    public let modelPath: String
    /// Tile side in input pixels; 0 runs the whole image at once (`--bg-tile`).
    public var tile: Int
    public var tilePad: Int
    /// Reflect padding on the right and bottom before the network (GFPGAN uses 0, RealESRGANer's default is 10).
    public var prePad: Int

    /// Loads a Real-ESRGAN `.pth` (`params_ema`/`params`) or `.safetensors`, or an ncnn `.param`
    /// (with its `.bin` beside it).
    public init(modelPath: String, tile: Int = 400, tilePad: Int = 10, prePad: Int = 0, verifyChecksums: Bool = true,
                context: ComputeContext) throws {
        let sd: StateDict
        if modelPath.hasSuffix(".param") || modelPath.hasSuffix(".bin") {
            let ncnn = try NCNNModel(path: modelPath)
            sd = ncnn.layers.contains { $0.type == "PReLU" }
                ? try SRVGGNetCompact.stateDict(fromNCNN: ncnn) : try RRDBNet.stateDict(fromNCNN: ncnn)
        } else {
            sd = try WeightsFile.load(path: modelPath, verifyChecksums: verifyChecksums).0
        }
        switch Architecture.detect(sd) {
        case .srvggNetCompact?: network = .srvgg(try SRVGGNetCompact(stateDict: sd, file: modelPath, context: context))
        default: network = .rrdb(try RRDBNet(stateDict: sd, file: modelPath, context: context))
        }
        self.modelPath = modelPath
        self.tile = tile
        self.tilePad = tilePad
        self.prePad = prePad
    }

    /// The network's upscaling factor.
    public var scale: Int {
        switch network {
        case .rrdb(let n): return n.scale
        case .srvgg(let n): return n.scale
        }
    }

    public var title: String {
        switch network {
        case .rrdb(let n): return "Real-ESRGAN RRDBNet x\(n.scale) (\(n.blockCount) blocks)"
        case .srvgg(let n): return "Real-ESRGAN SRVGGNetCompact x\(n.scale) (\(n.convCount) convs)"
        }
    }

    /// The network on `[1, 3, H, W]` RGB in [0, 1] (no padding, tiling or clamping).
    public func forward(_ x: Tensor, _ ctx: ComputeContext) throws -> Tensor {
        switch network {
        case .rrdb(let n): return try n(x, ctx)
        case .srvgg(let n): return try n(x, ctx)
        }
    }

    /// `RealESRGANer.enhance(img, outscale)` on an 8-bit BGR or BGRA image. `progress` is called
    /// after each tile with (done, total), per pass (the alpha channel is a second pass).
    public func enhance(_ image: PixelImage, outscale: Double? = nil, context: ComputeContext,
                        progress: ((Int, Int) -> Void)? = nil) throws -> PixelImage {
        precondition(image.channels == 3 || image.channels == 4, "enhance needs a BGR or BGRA image")
        let (w, h, c) = (image.width, image.height, image.channels)
        // RGB planes in [0, 1] (`img / 255` in float32, BGR → RGB).
        var rgb = [Float](repeating: 0, count: 3 * w * h)
        for i in 0..<(w * h) {
            for k in 0..<3 { rgb[k * w * h + i] = Float(image.pixels[i * c + 2 - k]) / 255 }
        }
        let s = scale
        var out = try run(rgb, width: w, height: h, output: .bgr, context: context, progress: progress)
        var channels = 3
        if c == 4 {
            let alpha = try alphaPass((0..<(w * h)).map { image.pixels[$0 * 4 + 3] }, width: w, height: h, context: context, progress: progress)
            var merged = [UInt8](repeating: 0, count: w * s * h * s * 4)
            for i in 0..<(w * s * h * s) {
                merged[4 * i] = out[3 * i]; merged[4 * i + 1] = out[3 * i + 1]; merged[4 * i + 2] = out[3 * i + 2]
                merged[4 * i + 3] = alpha[i]
            }
            out = merged
            channels = 4
        }
        let result = PixelImage(width: w * s, height: h * s, channels: channels, pixels: out)
        if let outscale, outscale != Double(s) {
            return result.resizedLanczos4(width: Int(Double(w) * outscale), height: Int(Double(h) * outscale))
        }
        return result
    }

    /// An alpha channel as `enhance` upsamples it (gray → RGB → network → clamp → gray), at the
    /// network's scale, then `outscale` by LANCZOS4.
    public func enhanceAlpha(_ alpha: [UInt8], width w: Int, height h: Int, outscale: Double? = nil, context: ComputeContext,
                             progress: ((Int, Int) -> Void)? = nil) throws -> [UInt8] {
        let up = try alphaPass(alpha, width: w, height: h, context: context, progress: progress)
        let s = scale
        guard let outscale, outscale != Double(s) else { return up }
        return PixelImage(width: w * s, height: h * s, channels: 1, pixels: up)
            .resizedLanczos4(width: Int(Double(w) * outscale), height: Int(Double(h) * outscale)).pixels
    }

    private func alphaPass(_ alpha: [UInt8], width w: Int, height h: Int, context: ComputeContext,
                           progress: ((Int, Int) -> Void)?) throws -> [UInt8] {
        let a = alpha.map { Float($0) / 255 }
        return try run(a + a + a, width: w, height: h, output: .gray, context: context, progress: progress)
    }

    /// What a tile's output planes become: BGR values, or one gray value (the alpha pass).
    private enum TileOutput { case bgr, gray }

    /// The padded size of a `w`×`h` input: pre_pad, then the mod pad for the x2 (multiple of 2)
    /// and x1 (multiple of 4) networks.
    func paddedSize(width w: Int, height h: Int) throws -> (Int, Int) {
        let s = scale
        var (pw, ph) = (w + prePad, h + prePad)
        let mod = s == 2 ? 2 : s == 1 ? 4 : 1
        pw += (mod - pw % mod) % mod
        ph += (mod - ph % mod) % mod
        guard pw - w < w, ph - h < h else {   // reflect padding needs pad < size
            throw ModelError.invalidInput("the image (\(w)×\(h)) is too small for Real-ESRGAN's reflect padding")
        }
        return (pw, ph)
    }

    /// Pads, tiles and runs 3 planes (`[3, H, W]`, RGB in [0, 1]), storing each output position as
    /// `output` says: clamp_(0, 1), then for the alpha pass cv2.COLOR_BGR2GRAY on the BGR floats
    /// (0.114·B + 0.587·G + 0.299·R), then (x · 255).round() in float32, half to even.
    private func run(_ planes: [Float], width w: Int, height h: Int, output: TileOutput, context: ComputeContext,
                     progress: ((Int, Int) -> Void)?) throws -> [UInt8] {
        let (pw, ph) = try paddedSize(width: w, height: h)
        let padded = Self.reflectPadded(planes, width: w, height: h, toWidth: pw, height: ph)
        let outChannels = output == .bgr ? 3 : 1
        let row = w * scale * outChannels
        var out = [UInt8](repeating: 0, count: h * scale * row)
        try runTileRows(width: w, height: h, output: output, context: context, progress: progress, planes: { py0, py1 in
            Array(padded[(py0 * pw)..<(py1 * pw)]) + Array(padded[(ph * pw + py0 * pw)..<(ph * pw + py1 * pw)])
                + Array(padded[(2 * ph * pw + py0 * pw)..<(2 * ph * pw + py1 * pw)])
        }, emit: { oy, band in
            out.replaceSubrange((oy * row)..<(oy * row + band.count), with: band)
        })
        return out
    }

    /// The output of an 8-bit BGR `width`×`height` image one tile row at a time, top to bottom:
    /// `rows(y, n)` gives its source rows y..<y+n (asked for in overlapping, increasing bands of
    /// tile + 2 × tile_pad rows), `emit(y, band)` takes output rows from y, BGR at the network's
    /// scale. The values `enhance` gives, without holding the image.
    public func enhanceRows(width w: Int, height h: Int, context: ComputeContext, rows: (Int, Int) throws -> PixelImage,
                            emit: (Int, PixelImage) throws -> Void) throws {
        let (pw, _) = try paddedSize(width: w, height: h)
        try runTileRows(width: w, height: h, output: .bgr, context: context, progress: nil, planes: { py0, py1 in
            // Padded rows past the image reflect rows above them; read the source rows that cover both.
            func reflect(_ i: Int, _ n: Int) -> Int { i < n ? i : 2 * (n - 1) - i }
            let needed = (py0..<py1).map { reflect($0, h) }
            let (lo, hi) = (needed.min() ?? 0, (needed.max() ?? 0) + 1)
            let band = try rows(lo, hi - lo)
            let bh = py1 - py0
            var planes = [Float](repeating: 0, count: 3 * bh * pw)
            for (j, sy) in needed.enumerated() {
                for x in 0..<pw {
                    let sx = reflect(x, w)
                    for k in 0..<3 { planes[(k * bh + j) * pw + x] = Float(band.pixels[((sy - lo) * w + sx) * 3 + 2 - k]) / 255 }
                }
            }
            return planes
        }, emit: { oy, band in
            try emit(oy, PixelImage(width: w * scale, height: band.count / (w * scale * 3), channels: 3, pixels: band))
        })
    }

    /// The tiling of `run`, one tile row at a time: `planes(py0, py1)` gives padded rows
    /// py0..<py1 as `[3, py1 − py0, pw]`; `emit(oy, values)` takes the row's output rows from oy.
    private func runTileRows(width w: Int, height h: Int, output: TileOutput, context: ComputeContext, progress: ((Int, Int) -> Void)?,
                             planes: (Int, Int) throws -> [Float], emit: (Int, [UInt8]) throws -> Void) throws {
        let s = scale
        let (pw, ph) = try paddedSize(width: w, height: h)
        let (ow, oh) = (w * s, h * s)     // the crops of post_process keep exactly the unpadded area
        let outChannels = output == .bgr ? 3 : 1
        func byte(_ v: Float) -> UInt8 { UInt8((v * 255).rounded(.toNearestOrEven)) }
        func clamped(_ v: Float) -> Float { min(max(v, 0), 1) }
        let tileSize = tile > 0 ? tile : max(pw, ph)
        let pad = tile > 0 ? tilePad : 0
        let tilesX = (pw + tileSize - 1) / tileSize, tilesY = (ph + tileSize - 1) / tileSize
        for ty in 0..<tilesY {
            let (y0, y1) = (ty * tileSize, min((ty + 1) * tileSize, ph))
            let (py0, py1) = (max(y0 - pad, 0), min(y1 + pad, ph))
            let band = try planes(py0, py1)
            let bh = py1 - py0
            let (oy0, oy1) = (y0 * s, min(y1 * s, oh))
            guard oy1 > oy0 else { continue }
            var out = [UInt8](repeating: 0, count: (oy1 - oy0) * ow * outChannels)
            for tx in 0..<tilesX {
                let (x0, x1) = (tx * tileSize, min((tx + 1) * tileSize, pw))
                let (px0, px1) = (max(x0 - pad, 0), min(x1 + pad, pw))
                let (tw, th) = (px1 - px0, bh)
                let input = Tensor(shape: [1, 3, th, tw]) { t in
                    for k in 0..<3 {
                        for y in 0..<th {
                            for x in 0..<tw { t[(k * th + y) * tw + x] = band[(k * bh + y) * pw + px0 + x] }
                        }
                    }
                }
                let y = try context.array(try forward(input, context))
                let (stw, sth) = (tw * s, th * s)
                // The tile's own area (without context), clipped to the unpadded output.
                for oy in oy0..<oy1 {
                    let sy = oy - py0 * s
                    for ox in stride(from: x0 * s, to: min(x1 * s, ow), by: 1) {
                        let sx = ox - px0 * s
                        let (at, plane) = (sy * stw + sx, stw * sth)
                        guard y[at].isFinite, y[plane + at].isFinite, y[2 * plane + at].isFinite else {
                            throw EngineError.nonFinite(op: "Real-ESRGAN")
                        }
                        let (r, g, b) = (clamped(y[at]), clamped(y[plane + at]), clamped(y[2 * plane + at]))
                        let o = ((oy - oy0) * ow + ox) * outChannels
                        switch output {
                        case .bgr: (out[o], out[o + 1], out[o + 2]) = (byte(b), byte(g), byte(r))
                        case .gray: out[o] = byte(clamped(b * 0.114 + g * 0.587 + r * 0.299))
                        }
                    }
                }
                progress?(ty * tilesX + tx + 1, tilesX * tilesY)
            }
            try emit(oy0, out)
        }
    }

    /// `F.pad(x, (0, pw − w, 0, ph − h), 'reflect')` on `[3, H, W]` planes.
    static func reflectPadded(_ planes: [Float], width w: Int, height h: Int, toWidth pw: Int, height ph: Int) -> [Float] {
        if pw == w && ph == h { return planes }
        func reflect(_ i: Int, _ n: Int) -> Int { i < n ? i : 2 * (n - 1) - i }
        var out = [Float](repeating: 0, count: 3 * pw * ph)
        for k in 0..<3 {
            for y in 0..<ph {
                let sy = reflect(y, h)
                for x in 0..<pw { out[(k * ph + y) * pw + x] = planes[(k * h + sy) * w + reflect(x, w)] }
            }
        }
        return out
    }
}
