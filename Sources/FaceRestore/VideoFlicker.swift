// The flicker measure: how much a region of a video changes from frame to frame once the region's
// own motion is compensated. For a face that holds still (up to small jitter), what is left is
// the restoration's frame-to-frame instability, which temporal mode should lower.

import FaceRestoreImaging
import Foundation

public enum VideoFlicker {
    /// An integer rectangle of a frame.
    public struct Region: Sendable, Equatable {
        public var x: Int, y: Int, width: Int, height: Int
        public init(x: Int, y: Int, width: Int, height: Int) {
            self.x = x
            self.y = y
            self.width = width
            self.height = height
        }
    }

    /// Calls `body` with each stored frame of the video at `path` (8-bit BGR), one at a time.
    public static func forEachFrame(of path: String, limits: ImageLimits = ImageLimits(), _ body: (Int, PixelImage) throws -> Void) throws {
        _ = ToolProcess.ignoreBrokenPipes
        let info = try Restorer.probeVideo(path)
        let (pixels, overflow) = info.width.multipliedReportingOverflow(by: info.height)
        guard !overflow, pixels <= limits.maxPixels else { throw VideoError.tooLarge(path: path, width: info.width, height: info.height, limit: limits.maxPixels) }
        let log = NSTemporaryDirectory() + "/facerestore-frames-\(getpid())-\(UUID().uuidString.prefix(8)).log"
        defer { unlink(log) }
        let decoder = try ToolProcess(tool: try ToolProcess.locate("ffmpeg"),
                                      arguments: ["-nostdin", "-v", "error", "-noautorotate", "-i", path, "-map", "0:v:0",
                                                  "-vf", "scale=in_color_matrix=\(Restorer.colorMatrix(info.colorSpace))",
                                                  "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "bgr24", "-"],
                                      stdin: false, stdout: true, errorPath: log)
        defer { decoder.stop() }
        var buffer = [UInt8](repeating: 0, count: pixels * 3)
        var index = 0
        while try decoder.readExactly(into: &buffer) {
            try body(index, PixelImage(width: info.width, height: info.height, channels: 3, pixels: buffer))
            index += 1
        }
        guard decoder.finish() == 0 else {
            throw VideoError.unreadable(path: path, reason: decoder.lastErrorLine(removing: path) ?? "the decoder failed")
        }
    }

    /// The mean absolute difference (gray levels, all channels) inside `region` between each frame
    /// and the next, the next shifted by the whole-pixel offset within ±`maxShift` that makes it
    /// smallest (the region's motion compensated), averaged over the frame pairs.
    public static func measure(path: String, region: Region, maxShift: Int = 4) throws -> Double {
        var previous: PixelImage?
        var total = 0.0
        var pairs = 0
        try forEachFrame(of: path) { _, frame in
            if let previous {
                total += compensatedDifference(previous, frame, region: region, maxShift: maxShift)
                pairs += 1
            }
            previous = frame
        }
        guard pairs > 0 else { throw VideoError.invalid(path: path, reason: "the flicker measure needs at least two frames") }
        return total / Double(pairs)
    }

    /// The smallest mean absolute difference between `a`'s region and `b`'s region moved by up to
    /// ±`maxShift` pixels (the region clipped to where both lie inside the frames).
    public static func compensatedDifference(_ a: PixelImage, _ b: PixelImage, region r: Region, maxShift: Int) -> Double {
        guard a.width == b.width, a.height == b.height, a.channels == 3, b.channels == 3 else { return .infinity }
        let s = max(0, maxShift)
        let x0 = max(r.x, s), y0 = max(r.y, s)
        let right = r.x.addingReportingOverflow(r.width), bottom = r.y.addingReportingOverflow(r.height)
        let x1 = min(right.overflow ? Int.max : right.partialValue, a.width - s)
        let y1 = min(bottom.overflow ? Int.max : bottom.partialValue, a.height - s)
        guard x1 > x0, y1 > y0 else { return .infinity }
        var best = Double.infinity
        for dy in -s...s {
            for dx in -s...s {
                var sum = 0
                for y in y0..<y1 {
                    let rowA = (y * a.width) * 3, rowB = ((y + dy) * a.width + dx) * 3
                    for i in (x0 * 3)..<(x1 * 3) { sum += abs(Int(a.pixels[rowA + i]) - Int(b.pixels[rowB + i])) }
                }
                best = min(best, Double(sum) / Double((x1 - x0) * (y1 - y0) * 3))
            }
        }
        return best
    }
}
