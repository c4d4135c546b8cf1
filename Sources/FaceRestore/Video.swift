// Videos: every frame restored through the photo path, streamed between two ffmpeg processes
// (docs/architecture.md says why processes over pipes rather than linking libavcodec). ffprobe
// reads the streams; one ffmpeg decodes the video stream to raw BGR frames on a pipe, one frame
// in memory at a time; each frame is turned upright (the stream's rotation), restored (with
// faces tracked and their landmarks smoothed over time unless `temporal` is off), turned back and
// piped into an encoder. The output is encoded in segments of `segmentFrames` frames, each
// renamed into a hidden parts folder when complete, so an interrupted run can continue from its
// last complete segment; the segments are then joined without re-encoding, with the source's
// audio and subtitle streams copied unchanged and its rotation, colour tags and time base kept,
// into a temporary file renamed onto the output when everything succeeded.

import FaceRestoreEngine
import FaceRestoreImaging
import FaceRestoreModels
import FaceRestorePipeline
import Foundation

// MARK: containers

/// A video container FaceRestore reads and writes, recognised by content.
public enum VideoContainer: String, Sendable, CaseIterable {
    case mp4, mov, mkv, webm, avi

    /// ffmpeg's muxer name.
    var muxer: String {
        switch self {
        case .mp4: return "mp4"
        case .mov: return "mov"
        case .mkv: return "matroska"
        case .webm: return "webm"
        case .avi: return "avi"
        }
    }

    /// The container a file's first bytes announce: an ISO-BMFF `ftyp` box (MP4; QuickTime for
    /// the `qt  ` brand), EBML (Matroska; WebM when its DocType says so) or RIFF `AVI `.
    public static func sniff(_ bytes: [UInt8]) -> VideoContainer? {
        if bytes.count >= 12, Array(bytes[4..<8]) == Array("ftyp".utf8) {
            return Array(bytes[8..<12]) == Array("qt  ".utf8) ? .mov : .mp4
        }
        if bytes.count >= 4, bytes[0] == 0x1A, bytes[1] == 0x45, bytes[2] == 0xDF, bytes[3] == 0xA3 {
            let webm = Array("webm".utf8)
            let window = bytes.prefix(64)
            if window.count >= 4 {
                for i in 0...(window.count - 4) where Array(window[window.startIndex + i..<window.startIndex + i + 4]) == webm { return .webm }
            }
            return .mkv
        }
        if bytes.count >= 12, Array(bytes[0..<4]) == Array("RIFF".utf8), Array(bytes[8..<12]) == Array("AVI ".utf8) { return .avi }
        return nil
    }

    /// The container of the file at `path`, or nil when it is not a video this reads (or
    /// cannot be opened).
    public static func of(fileAt path: String) -> VideoContainer? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: 64) else { return nil }
        return sniff(Array(data))
    }
}

// MARK: errors

/// Why a video could not be restored. One line, naming the file.
public enum VideoError: Error, CustomStringConvertible, Equatable {
    /// ffmpeg or ffprobe is not on the PATH.
    case toolMissing(String)
    /// The file has no video stream (an audio-only file).
    case noVideoStream(path: String)
    /// ffprobe or the decoder could not read the file (truncated, damaged, not a video).
    case unreadable(path: String, reason: String)
    /// The frames are larger than the decoder limits allow.
    case tooLarge(path: String, width: Int, height: Int, limit: Int)
    /// A property the restoration needs is missing or out of range.
    case invalid(path: String, reason: String)
    /// The encoder or the final join failed.
    case encoding(path: String, reason: String)
    /// The restorer cannot restore videos in its mode.
    case unsupported(String)

    public var description: String {
        switch self {
        case .toolMissing(let tool):
            return "\(tool) is not installed: restoring videos needs FFmpeg's ffmpeg and ffprobe on the PATH (Debian: apt install ffmpeg)"
        case .noVideoStream(let path): return "\(path): has no video stream (audio only?)"
        case let .unreadable(path, reason): return "\(path): cannot read the video (\(reason))"
        case let .tooLarge(path, w, h, limit): return "\(path): \(w)×\(h) frames are over the limit of \(limit) pixels"
        case let .invalid(path, reason): return "\(path): \(reason)"
        case let .encoding(path, reason): return "\(path): cannot write the video (\(reason))"
        case .unsupported(let reason): return reason
        }
    }
}

// MARK: probing

/// A ratio of two integers as ffprobe prints them (`30000/1001`).
public struct VideoRational: Sendable, Equatable, CustomStringConvertible {
    public var numerator: Int
    public var denominator: Int
    public var value: Double { denominator == 0 ? 0 : Double(numerator) / Double(denominator) }
    public var description: String { "\(numerator)/\(denominator)" }

    public init(_ numerator: Int, _ denominator: Int) {
        self.numerator = numerator
        self.denominator = denominator
    }

    init?(parsing text: String?) {
        guard let parts = text?.split(separator: "/"), parts.count == 2, let n = Int(parts[0]), let d = Int(parts[1]),
              n > 0, d > 0 else { return nil }
        self.init(n, d)
    }
}

/// What ffprobe says about a video file.
public struct VideoInfo: Sendable, Equatable {
    public var container: VideoContainer?
    /// Stored frame size (before rotation).
    public var width: Int
    public var height: Int
    public var codec: String
    public var pixelFormat: String?
    public var frameRate: VideoRational
    public var timeBase: VideoRational?
    /// Seconds, when known.
    public var duration: Double?
    /// Frames in the stream, when the container says.
    public var frameCount: Int?
    /// Counter-clockwise display rotation in degrees (0, 90, 180 or 270), as ffprobe reports it.
    public var rotation: Int
    public var colorRange: String?
    public var colorSpace: String?
    public var colorTransfer: String?
    public var colorPrimaries: String?
    public var audioStreams: Int
    public var subtitleStreams: Int

    /// The EXIF orientation that turns stored frames upright (1 for none).
    var uprightOrientation: Int {
        switch rotation {
        case 90: return 8
        case 180: return 3
        case 270: return 6
        default: return 1
        }
    }

    /// The orientation that turns upright frames back to stored ones.
    var storedOrientation: Int {
        switch rotation {
        case 90: return 6
        case 180: return 3
        case 270: return 8
        default: return 1
        }
    }

    /// Upright frame size.
    var uprightSize: (width: Int, height: Int) { rotation == 90 || rotation == 270 ? (height, width) : (width, height) }

    /// Frames expected from `start` for `duration` seconds (nil when unknown).
    func expectedFrames(start: Double?, duration limit: Double?) -> Int? {
        let fps = frameRate.value
        var total: Double? = frameCount.map(Double.init) ?? duration.map { $0 * fps }
        if let start, let t = total { total = max(0, t - start * fps) }
        if let limit {
            let wanted = limit * fps
            total = total.map { min($0, wanted) } ?? wanted
        }
        guard let t = total, t.isFinite, t >= 0, t < 1e12 else { return nil }
        return Int(t.rounded())
    }

    /// Parses ffprobe's `-show_streams -show_format -of json` output. Missing or odd fields throw.
    public static func parse(json data: Data, path: String) throws -> VideoInfo {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw VideoError.unreadable(path: path, reason: "ffprobe's answer is not JSON")
        }
        let streams = root["streams"] as? [[String: Any]] ?? []
        func string(_ d: [String: Any], _ key: String) -> String? {
            if let s = d[key] as? String { return s }
            if let n = d[key] as? NSNumber { return n.stringValue }
            return nil
        }
        func int(_ d: [String: Any], _ key: String) -> Int? {
            if let n = d[key] as? NSNumber { let v = n.doubleValue; return v.isFinite && abs(v) < 1e15 ? Int(v) : nil }
            if let s = d[key] as? String { return Int(s) }
            return nil
        }
        let audio = streams.filter { string($0, "codec_type") == "audio" }.count
        let subtitles = streams.filter { string($0, "codec_type") == "subtitle" }.count
        // The first video stream that is not a cover picture.
        guard let video = streams.first(where: { s in
            string(s, "codec_type") == "video" && ((s["disposition"] as? [String: Any]).flatMap { int($0, "attached_pic") } ?? 0) == 0
        }) else { throw VideoError.noVideoStream(path: path) }
        guard let width = int(video, "width"), let height = int(video, "height"), width > 0, height > 0 else {
            throw VideoError.invalid(path: path, reason: "the video stream has no frame size")
        }
        guard let rate = VideoRational(parsing: string(video, "avg_frame_rate")) ?? VideoRational(parsing: string(video, "r_frame_rate")),
              rate.value > 0, rate.value <= 1000 else {
            throw VideoError.invalid(path: path, reason: "the video stream has no usable frame rate")
        }
        var rotation = 0
        for side in video["side_data_list"] as? [[String: Any]] ?? [] {
            if let r = int(side, "rotation") { rotation = r }
        }
        if rotation == 0, let tags = video["tags"] as? [String: Any], let r = int(tags, "rotate") { rotation = -r }
        rotation = ((rotation % 360) + 360) % 360
        guard [0, 90, 180, 270].contains(rotation) else {
            throw VideoError.invalid(path: path, reason: "the video is rotated by \(rotation)°; only quarter turns are supported")
        }
        let format = root["format"] as? [String: Any] ?? [:]
        var duration = string(video, "duration").flatMap(Double.init) ?? string(format, "duration").flatMap(Double.init)
        if let d = duration, !(d.isFinite && d >= 0 && d < 1e9) { duration = nil }
        var frames = int(video, "nb_frames")
        if let f = frames, f <= 0 { frames = nil }
        func tag(_ key: String) -> String? {
            guard let v = string(video, key), v != "unknown", v != "reserved", !v.isEmpty, v.count < 32,
                  v.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else { return nil }
            return v
        }
        return VideoInfo(container: nil, width: width, height: height, codec: string(video, "codec_name") ?? "unknown",
                         pixelFormat: tag("pix_fmt"), frameRate: rate, timeBase: VideoRational(parsing: string(video, "time_base")),
                         duration: duration, frameCount: frames, rotation: rotation,
                         colorRange: tag("color_range"), colorSpace: tag("color_space"), colorTransfer: tag("color_transfer"),
                         colorPrimaries: tag("color_primaries"), audioStreams: audio, subtitleStreams: subtitles)
    }
}

// MARK: options and results

/// How a video is restored and encoded.
public struct VideoOptions: Sendable, Equatable {
    /// The video codec of the output.
    public enum Codec: String, Sendable, Equatable {
        /// H.264 (libx264) at `crf`; VP9 (libvpx-vp9) at `crf` for WebM, which cannot hold H.264.
        case standard
        /// Lossless RGB H.264 (libx264rgb, QP 0): exact frames, for comparisons and intermediates.
        case lossless
    }

    /// The per-frame options (upscale nil: 1, the source's size).
    public var photo = PhotoOptions()
    /// Faces tracked across frames with their landmarks smoothed over time; off restores each
    /// frame alone, exactly as a photo.
    public var temporal = true
    public var codec = Codec.standard
    /// x264's constant rate factor: 17 is visually lossless.
    public var crf = 17
    /// Restore from this many seconds into the video.
    public var start: Double?
    /// Restore this many seconds.
    public var duration: Double?
    /// Continue from the complete segments an interrupted run with the same input and options left.
    public var resume = false
    /// Frames per output segment (the unit an interrupted run resumes from).
    public var segmentFrames = 250
    public var tracking = FaceTracker.Settings()

    public init() {}

    public func validate() throws {
        try photo.validate()
        if !(0...51).contains(crf) { throw PipelineError.invalidArgument("the video quality (CRF) must be between 0 and 51, got \(crf)") }
        if let start, !(start.isFinite && start >= 0) { throw PipelineError.invalidArgument("the start must be a time of at least 0 seconds") }
        if let duration, !(duration.isFinite && duration > 0) { throw PipelineError.invalidArgument("the duration must be a positive number of seconds") }
        if !(1...100_000).contains(segmentFrames) { throw PipelineError.invalidArgument("segments must hold 1 to 100000 frames") }
    }

    /// What decides whether an earlier run's segments can be reused.
    var resumeKey: String {
        let p = photo
        return ["temporal=\(temporal)", "codec=\(codec.rawValue)", "crf=\(crf)", "start=\(start.map { "\($0)" } ?? "-")",
                "duration=\(duration.map { "\($0)" } ?? "-")", "segment=\(segmentFrames)", "upscale=\(p.upscale ?? 1)",
                "center=\(p.onlyCenterFace)", "threshold=\(p.detectionThreshold.map { "\($0)" } ?? "-")", "weight=\(p.weight)",
                "seed=\(p.seed.map { "\($0)" } ?? "-")", "fidelity=\(p.fidelity.map { "\($0)" } ?? "-")", "gray=\(p.keepGray)",
                "tracking=\(tracking)"].joined(separator: "\n")
    }
}

/// Where a video restoration is.
public struct VideoProgress: Sendable, Equatable {
    /// Frames restored so far in this run (resumed segments included).
    public var frames: Int
    /// Frames expected (nil when the container does not say).
    public var total: Int?
    /// Frames per second restored in this run.
    public var framesPerSecond: Double
    /// Seconds left at that rate (nil when the total is unknown).
    public var remaining: Double?
}

/// What a video restoration did.
public struct VideoRestoration: Sendable {
    public var sourcePath: String
    public var outputPath: String
    public var info: VideoInfo
    /// Frames in the output.
    public var frames = 0
    /// Frames taken from an earlier run's segments.
    public var resumedFrames = 0
    /// Frames with at least one restored face (this run's).
    public var framesWithFaces = 0
    /// Faces restored, summed over this run's frames.
    public var faces = 0
    /// The most faces in one frame.
    public var maxFaces = 0
    public var sceneCuts = 0
    /// No frame had a face: the source's streams were copied to the output unchanged.
    public var copiedThrough = false
    /// Seconds: decoding (waiting for frames), restoring (the photo path), tracking, encoding
    /// (writing frames and finishing segments), joining, and the whole run.
    public var decodeSeconds = 0.0, restoreSeconds = 0.0, trackSeconds = 0.0, encodeSeconds = 0.0, joinSeconds = 0.0, totalSeconds = 0.0
    public var warnings: [RestoreWarning] = []
    /// CPU seconds of the ffmpeg processes (decoding, encoding, joining: they run beside the
    /// restoration) and of this process during the run.
    public var toolCPUSeconds = 0.0, ownCPUSeconds = 0.0

    /// Share of the CPU time the ffmpeg processes took.
    public var toolCPUShare: Double { toolCPUSeconds + ownCPUSeconds > 0 ? toolCPUSeconds / (toolCPUSeconds + ownCPUSeconds) : 0 }

    /// Share of the time spent outside the photo path (decoding, tracking, encoding, joining).
    public var overhead: Double { totalSeconds > 0 ? (totalSeconds - restoreSeconds) / totalSeconds : 0 }

    /// Seconds per stage, for report lines.
    public var byStage: [String: Double] {
        ["decode": decodeSeconds, "network": restoreSeconds, "track": trackSeconds, "encode": encodeSeconds + joinSeconds, "total": totalSeconds]
    }
}

// MARK: processes

/// A child process with its standard error kept in a file.
final class ToolProcess {
    let process = Process()
    let stdinPipe: Pipe?
    let stdoutPipe: Pipe?
    let errorPath: String

    init(tool: String, arguments: [String], stdin: Bool, stdout: Bool, errorPath: String) throws {
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        self.errorPath = errorPath
        stdinPipe = stdin ? Pipe() : nil
        stdoutPipe = stdout ? Pipe() : nil
        process.standardInput = stdinPipe ?? FileHandle.nullDevice
        process.standardOutput = stdoutPipe ?? FileHandle.nullDevice
        _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
        guard let err = FileHandle(forWritingAtPath: errorPath) else {
            throw VideoError.encoding(path: errorPath, reason: "cannot create a log file")
        }
        process.standardError = err
        do { try process.run() } catch {
            throw VideoError.toolMissing(URL(fileURLWithPath: tool).lastPathComponent)
        }
        try? err.close()
    }

    /// Reads exactly `buffer.count` bytes; false at the end of the stream (a partial frame is an error).
    func readExactly(into buffer: inout [UInt8]) throws -> Bool {
        guard let fd = stdoutPipe?.fileHandleForReading.fileDescriptor else { return false }
        var offset = 0
        let count = buffer.count
        try buffer.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return }
            while offset < count {
                let n = read(fd, base + offset, count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw VideoError.unreadable(path: errorPath, reason: "reading frames failed: \(String(cString: strerror(errno)))")
                }
                if n == 0 { break }
                offset += n
            }
        }
        if offset == 0 { return false }
        guard offset == count else { throw PartialFrame(bytes: offset) }
        return true
    }

    struct PartialFrame: Error { let bytes: Int }

    /// Writes all of `bytes` to the process's input; false when it has closed it (it failed).
    func write(_ bytes: [UInt8]) -> Bool {
        guard let fd = stdinPipe?.fileHandleForWriting.fileDescriptor else { return false }
        return bytes.withUnsafeBytes { raw -> Bool in
            guard let base = raw.baseAddress else { return true }
            var offset = 0
            while offset < raw.count {
                let n = Foundation.write(fd, base + offset, raw.count - offset)
                if n < 0 { if errno == EINTR { continue }; return false }
                offset += n
            }
            return true
        }
    }

    func closeInput() { try? stdinPipe?.fileHandleForWriting.close() }

    /// Waits for the process; its exit status.
    func finish() -> Int32 {
        closeInput()
        process.waitUntilExit()
        if !outputClosed { try? stdoutPipe?.fileHandleForReading.close() }
        outputClosed = true
        return process.terminationStatus
    }

    private var outputClosed = false

    /// Ends the process early: its output pipe closed first (a child blocked writing a frame
    /// never sees SIGTERM until the write returns), then SIGTERM, then the wait.
    func stop() {
        if !outputClosed { try? stdoutPipe?.fileHandleForReading.close() }
        outputClosed = true
        if process.isRunning { process.terminate() }
        _ = finish()
    }

    /// The last meaningful line ffmpeg wrote to standard error, without its `[demuxer @ 0x…]` prefix.
    func lastErrorLine(removing path: String) -> String? {
        ToolProcess.lastLine(of: (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "", removing: path)
    }

    static func lastLine(of text: String, removing path: String) -> String? {
        let lines = text.split(whereSeparator: \.isNewline).map { line -> String in
            var s = String(line).trimmingCharacters(in: .whitespaces)
            while s.hasPrefix("["), let close = s.firstIndex(of: "]") { s = String(s[s.index(after: close)...]).trimmingCharacters(in: .whitespaces) }
            if s.hasPrefix(path + ":") { s = String(s.dropFirst(path.count + 1)).trimmingCharacters(in: .whitespaces) }
            return s
        }.filter { !$0.isEmpty }
        guard var last = lines.last else { return nil }
        if last.count > 300 { last = String(last.prefix(300)) + "…" }
        return last
    }

    /// The tool's path on the PATH.
    static func locate(_ name: String) throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") where !dir.isEmpty {
            let candidate = dir + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw VideoError.toolMissing(name)
    }

    /// A closed pipe must fail a write, not end the process.
    static let ignoreBrokenPipes: Void = { signal(SIGPIPE, SIG_IGN); return () }()
}

// MARK: restoring

extension Restorer {
    /// Whether ffmpeg and ffprobe are on the PATH.
    public static var canRestoreVideos: Bool {
        (try? ToolProcess.locate("ffmpeg")) != nil && (try? ToolProcess.locate("ffprobe")) != nil
    }

    /// Reads a video's streams with ffprobe.
    public static func probeVideo(_ path: String) throws -> VideoInfo {
        let ffprobe = try ToolProcess.locate("ffprobe")
        guard FileManager.default.isReadableFile(atPath: path) else { throw VideoError.unreadable(path: path, reason: "no such file") }
        let log = NSTemporaryDirectory() + "/facerestore-ffprobe-\(getpid())-\(UUID().uuidString.prefix(8)).log"
        defer { unlink(log) }
        let p = try ToolProcess(tool: ffprobe, arguments: ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", "--", path],
                                stdin: false, stdout: true, errorPath: log)
        let data = p.stdoutPipe?.fileHandleForReading.readDataToEndOfFile() ?? Data()
        let status = p.finish()
        if status != 0 {
            throw VideoError.unreadable(path: path, reason: (p.lastErrorLine(removing: path) ?? "ffprobe failed") + "; is it truncated or damaged?")
        }
        var info = try VideoInfo.parse(json: data, path: path)
        info.container = VideoContainer.of(fileAt: path)
        return info
    }

    /// `restored_videos/<name>.<ext>` under `output`: the source's name and extension.
    public static func restoredVideoPath(_ source: String, name: String? = nil, output: String) -> String {
        let url = URL(fileURLWithPath: source)
        let ext = url.pathExtension.isEmpty ? "mp4" : url.pathExtension
        return output + "/restored_videos/" + (name ?? Restorer.baseName(source)) + "." + ext
    }

    /// Restores every frame of the video at `path` into `outputPath` (see the file's header).
    /// `progress` is called on this thread after each frame; an error it throws stops the run
    /// (cancellation) and is rethrown. On failure no output file is left; the complete segments
    /// stay in a hidden parts folder beside it for `resume`.
    public func restoreVideo(file path: String, to outputPath: String, options: VideoOptions = VideoOptions(),
                             progress: ((VideoProgress) throws -> Void)? = nil) throws -> VideoRestoration {
        try options.validate()
        guard case .photos = mode else {
            if isAligned { throw VideoError.unsupported("videos are restored as whole frames; aligned face crops cannot be videos") }
            throw VideoError.unsupported("restoring videos needs a face model; none is installed")
        }
        _ = ToolProcess.ignoreBrokenPipes
        let started = DispatchTime.now().uptimeNanoseconds
        let childrenBefore = Self.cpuSeconds(children: true), selfBefore = Self.cpuSeconds(children: false)
        let ffmpeg = try ToolProcess.locate("ffmpeg")
        let info = try Self.probeVideo(path)
        guard let container = info.container ?? VideoContainer.of(fileAt: path) else {
            throw VideoError.unreadable(path: path, reason: "not an MP4, MOV, Matroska, WebM or AVI file")
        }
        // Sizes from the file: checked before any frame buffer is allocated.
        let limit = configuration.limits.maxPixels
        let (pixels, overflow) = info.width.multipliedReportingOverflow(by: info.height)
        guard !overflow, pixels <= limit, info.width <= configuration.limits.maxWidth, info.height <= configuration.limits.maxHeight else {
            throw VideoError.tooLarge(path: path, width: info.width, height: info.height, limit: limit)
        }
        let upscale = options.photo.upscale ?? 1
        var photoOptions = options.photo
        photoOptions.upscale = upscale
        let (outPixels, overflow2) = pixels.multipliedReportingOverflow(by: upscale * upscale)
        guard !overflow2, outPixels <= limit else {
            throw VideoError.tooLarge(path: path, width: info.width * upscale, height: info.height * upscale, limit: limit)
        }
        try checkMemory(width: info.width, height: info.height, options: photoOptions)
        let frameBytes = pixels * 3

        let fm = FileManager.default
        let outURL = URL(fileURLWithPath: outputPath)
        let folder = outURL.deletingLastPathComponent().path
        try fm.createDirectory(atPath: folder, withIntermediateDirectories: true)
        // Temporary outputs of killed runs (their process is gone).
        removeStaleTemporaryFiles(in: folder)
        let parts = folder + "/." + outURL.lastPathComponent + ".parts"
        let key = "source=\(path)\nsize=\(((try? fm.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? -1)\n"
            + "model=\(modelName)\n" + options.resumeKey
        var completed = 0
        var resumedFaces = 0
        if options.resume, (try? String(contentsOfFile: parts + "/key", encoding: .utf8)) == key {
            while fm.fileExists(atPath: Self.segmentPath(parts, completed)) {
                resumedFaces += Int((try? String(contentsOfFile: Self.segmentPath(parts, completed) + ".faces", encoding: .utf8)) ?? "") ?? 0
                completed += 1
            }
        } else {
            try? fm.removeItem(atPath: parts)
        }
        try fm.createDirectory(atPath: parts, withIntermediateDirectories: true)
        try writeFileAtomically(Data(key.utf8), to: parts + "/key")
        let startFrame = completed * options.segmentFrames

        var result = VideoRestoration(sourcePath: path, outputPath: outputPath, info: info)
        result.resumedFrames = startFrame
        result.warnings = warnings + warnings(for: photoOptions)
        let tmp = folder + "/.\(outURL.lastPathComponent).tmp-\(temporaryFileHostTag)-\(getpid())-\(UUID().uuidString.prefix(8))"
        var decoder: ToolProcess?
        var encoder: ToolProcess?
        var segmentTmp: String?
        var succeeded = false
        defer {
            encoder?.stop()
            decoder?.stop()
            if let segmentTmp { unlink(segmentTmp) }
            unlink(tmp)
            // Nothing to resume from: no parts folder is left behind.
            if succeeded || !fm.fileExists(atPath: Self.segmentPath(parts, 0)) { try? fm.removeItem(atPath: parts) }
        }

        // Decoder: stored frames (no autorotation), exact frame order, BGR.
        let matrix = Self.colorMatrix(info.colorSpace)
        var decodeArgs = ["-nostdin", "-v", "error", "-noautorotate"]
        // Input options: the range is cut before `trim` skips a resumed run's frames.
        if let s = options.start { decodeArgs += ["-ss", String(format: "%.6f", s)] }
        if let d = options.duration { decodeArgs += ["-t", String(format: "%.6f", d)] }
        decodeArgs += ["-i", path]
        var filters: [String] = []
        if startFrame > 0 { filters.append("trim=start_frame=\(startFrame)") }
        filters.append("scale=in_color_matrix=\(matrix)")
        decodeArgs += ["-map", "0:v:0", "-vf", filters.joined(separator: ","), "-fps_mode", "passthrough",
                       "-f", "rawvideo", "-pix_fmt", "bgr24", "-"]
        decoder = try ToolProcess(tool: ffmpeg, arguments: decodeArgs, stdin: false, stdout: true, errorPath: parts + "/decode.log")

        var tracker = FaceTracker(frameRate: info.frameRate.value, settings: options.tracking)
        let total = info.expectedFrames(start: options.start, duration: options.duration)
        var buffer = [UInt8](repeating: 0, count: frameBytes)
        var frame = startFrame
        var segmentFaces = 0
        var runFrames = 0
        let runStart = DispatchTime.now().uptimeNanoseconds
        func seconds(_ from: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - from) / 1e9 }
        var outSize: (width: Int, height: Int)?

        func finishSegment() throws {
            guard let enc = encoder, let segTmp = segmentTmp else { return }
            let t = DispatchTime.now().uptimeNanoseconds
            let status = enc.finish()
            encoder = nil
            guard status == 0 else {
                throw VideoError.encoding(path: path, reason: enc.lastErrorLine(removing: segTmp) ?? "the encoder failed")
            }
            let index = (frame - 1) / options.segmentFrames
            try writeFileAtomically(Data("\(segmentFaces)".utf8), to: Self.segmentPath(parts, index) + ".faces")
            guard rename(segTmp, Self.segmentPath(parts, index)) == 0 else {
                throw VideoError.encoding(path: path, reason: "cannot rename a segment into \(parts)")
            }
            segmentTmp = nil
            segmentFaces = 0
            result.encodeSeconds += seconds(t)
        }

        while true {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let more: Bool
            do {
                more = try decoder?.readExactly(into: &buffer) ?? false
            } catch is ToolProcess.PartialFrame {
                throw VideoError.unreadable(path: path, reason: decoder?.lastErrorLine(removing: path) ?? "the last frame was cut short")
            }
            result.decodeSeconds += seconds(t0)
            guard more else { break }
            let stored = PixelImage(width: info.width, height: info.height, channels: 3, pixels: buffer)
            let upright = info.uprightOrientation == 1 ? stored : stored.oriented(exif: info.uprightOrientation)
            var adjust: FaceAdjustments?
            var smoothing = 0.0
            if options.temporal {
                let t1 = DispatchTime.now().uptimeNanoseconds
                tracker.observe(frame: upright)
                result.trackSeconds += seconds(t1)
                adjust = FaceAdjustments(faces: { faces in
                    let t = DispatchTime.now().uptimeNanoseconds
                    defer { smoothing += seconds(t) }
                    return tracker.smooth(faces)
                }, mask: { index, _, values in
                    let t = DispatchTime.now().uptimeNanoseconds
                    defer { smoothing += seconds(t) }
                    tracker.smoothMask(face: index, values: &values)
                })
            }
            let decoded = DecodedImage(image: upright, format: .png, sourceChannels: 3, sourceDepth: 8)
            let t1 = DispatchTime.now().uptimeNanoseconds
            let restored = try restore(decoded, name: Restorer.baseName(path), options: photoOptions, adjust: adjust)
            result.restoreSeconds += seconds(t1) - smoothing
            result.trackSeconds += smoothing
            let faceCount = restored.restoredFaceCount
            result.faces += faceCount
            result.maxFaces = max(result.maxFaces, faceCount)
            if faceCount > 0 { result.framesWithFaces += 1 }
            segmentFaces += faceCount
            guard let restoredImage = restored.image else { throw VideoError.invalid(path: path, reason: "a frame was not restored") }
            let image = info.storedOrientation == 1 ? restoredImage : restoredImage.oriented(exif: info.storedOrientation)
            if outSize == nil { outSize = (image.width, image.height) }
            guard let size = outSize, size.width == image.width, size.height == image.height, image.channels == 3 else {
                throw VideoError.invalid(path: path, reason: "a restored frame changed size")
            }

            let t2 = DispatchTime.now().uptimeNanoseconds
            if encoder == nil {
                let index = frame / options.segmentFrames
                let segTmp = Self.segmentPath(parts, index) + ".tmp-\(temporaryFileHostTag)-\(getpid())-\(UUID().uuidString.prefix(8))"
                segmentTmp = segTmp
                encoder = try ToolProcess(tool: ffmpeg, arguments: Self.encoderArguments(info: info, container: container, options: options,
                                                                                         width: size.width, height: size.height, output: segTmp),
                                          stdin: true, stdout: false, errorPath: parts + "/encode.log")
            }
            guard encoder?.write(image.pixels) == true else {
                _ = encoder?.finish()
                throw VideoError.encoding(path: path, reason: encoder?.lastErrorLine(removing: segmentTmp ?? "") ?? "the encoder stopped")
            }
            result.encodeSeconds += seconds(t2)
            frame += 1
            runFrames += 1
            if frame % options.segmentFrames == 0 { try finishSegment() }
            if let progress {
                let elapsed = seconds(runStart)
                let fps = elapsed > 0 ? Double(runFrames) / elapsed : 0
                let remaining = total.flatMap { t -> Double? in fps > 0 ? Double(max(0, t - frame)) / fps : nil }
                try progress(VideoProgress(frames: frame, total: total, framesPerSecond: fps, remaining: remaining))
            }
        }
        try finishSegment()
        if let dec = decoder {
            let status = dec.finish()
            decoder = nil
            if status != 0 {
                throw VideoError.unreadable(path: path, reason: (dec.lastErrorLine(removing: path) ?? "the decoder failed") + "; is it truncated or damaged?")
            }
        }
        guard frame > 0 else {
            throw VideoError.unreadable(path: path, reason: "no frame could be decoded" + (options.start != nil ? " from the start time given" : ""))
        }
        result.frames = frame
        result.sceneCuts = tracker.sceneCuts

        // Join: the segments (or, when no frame had a face, the source's own video stream).
        let t3 = DispatchTime.now().uptimeNanoseconds
        let segments = (frame + options.segmentFrames - 1) / options.segmentFrames
        result.copiedThrough = result.faces == 0 && resumedFaces == 0
        var args = ["-nostdin", "-v", "error"]
        if result.copiedThrough {
            if let s = options.start { args += ["-ss", String(format: "%.6f", s)] }
            if let d = options.duration { args += ["-t", String(format: "%.6f", d)] }
            args += ["-i", path, "-map", "0:v:0", "-map", "0:a?", "-map", "0:s?", "-c", "copy", "-map_metadata", "0"]
        } else {
            var list = ""
            for i in 0..<segments {
                list += "file '" + Self.segmentPath(parts, i).replacingOccurrences(of: "'", with: "'\\''") + "'\n"
            }
            try writeFileAtomically(Data(list.utf8), to: parts + "/segments.txt")
            args += ["-f", "concat", "-safe", "0", "-i", parts + "/segments.txt"]
            if let s = options.start { args += ["-ss", String(format: "%.6f", s)] }
            if let d = options.duration { args += ["-t", String(format: "%.6f", d)] }
            args += ["-i", path, "-map", "0:v:0", "-map", "1:a?", "-map", "1:s?", "-c", "copy", "-map_metadata", "1"]
            if info.rotation != 0 { args += ["-metadata:s:v:0", "rotate=\(info.rotation)"] }
            if (container == .mp4 || container == .mov), let tb = info.timeBase, tb.numerator == 1, (1...1_000_000).contains(tb.denominator) {
                args += ["-video_track_timescale", "\(tb.denominator)"]
            }
        }
        args += ["-fflags", "+bitexact", "-f", container.muxer, "-y", tmp]
        let join = try ToolProcess(tool: ffmpeg, arguments: args, stdin: false, stdout: false, errorPath: parts + "/join.log")
        guard join.finish() == 0 else {
            throw VideoError.encoding(path: path, reason: join.lastErrorLine(removing: tmp) ?? "joining the segments failed")
        }
        result.joinSeconds = seconds(t3)
        guard rename(tmp, outputPath) == 0 else {
            throw VideoError.encoding(path: path, reason: "cannot rename the output into place: \(String(cString: strerror(errno)))")
        }
        succeeded = true
        result.totalSeconds = seconds(started)
        result.toolCPUSeconds = Self.cpuSeconds(children: true) - childrenBefore
        result.ownCPUSeconds = Self.cpuSeconds(children: false) - selfBefore
        return result
    }

    /// User and system CPU seconds (`getrusage`; children: those waited for).
    static func cpuSeconds(children: Bool) -> Double {
        var u = rusage()
        #if os(Linux)
        let who = children ? RUSAGE_CHILDREN.rawValue : RUSAGE_SELF.rawValue
        #else
        let who = children ? RUSAGE_CHILDREN : RUSAGE_SELF
        #endif
        guard getrusage(who, &u) == 0 else { return 0 }
        func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return s(u.ru_utime) + s(u.ru_stime)
    }

    static func segmentPath(_ parts: String, _ index: Int) -> String { parts + "/" + String(format: "segment-%06d.mkv", index) }

    /// swscale's name for the source's YUV matrix (BT.601 when untagged, swscale's default).
    static func colorMatrix(_ space: String?) -> String {
        switch space {
        case "bt709"?: return "bt709"
        case "bt2020nc"?, "bt2020c"?: return "bt2020"
        case "fcc"?: return "fcc"
        case "smpte240m"?: return "smpte240m"
        default: return "bt601"
        }
    }

    /// The encoder of one segment: raw BGR frames on standard input → Matroska.
    static func encoderArguments(info: VideoInfo, container: VideoContainer, options: VideoOptions, width: Int, height: Int,
                                 output: String) -> [String] {
        var args = ["-nostdin", "-v", "error", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", "\(width)x\(height)",
                    "-framerate", info.frameRate.description, "-i", "-", "-an", "-sn"]
        switch options.codec {
        case .lossless:
            args += ["-c:v", "libx264rgb", "-qp", "0", "-preset", "medium", "-pix_fmt", "bgr24"]
        case .standard:
            // The source's chroma layout where x264 keeps it at 8 bits, and 4:4:4 for odd sizes.
            let even = width % 2 == 0 && height % 2 == 0
            var pix: String
            switch info.pixelFormat {
            case "yuv444p"?, "yuv444p10le"?, "yuvj444p"?, "gbrp"?, "rgb24"?, "bgr24"?: pix = "yuv444p"
            case "yuv422p"?, "yuv422p10le"?, "yuvj422p"?: pix = width % 2 == 0 ? "yuv422p" : "yuv444p"
            default: pix = even ? "yuv420p" : "yuv444p"
            }
            if container == .webm, pix == "yuv422p" { pix = "yuv444p" }
            // An RGB source (FFV1, libx264rgb) becomes limited-range YUV with an untagged matrix.
            let yuvMatrices: Set<String> = ["bt709", "smpte170m", "bt470bg", "bt2020nc", "bt2020c", "smpte240m", "fcc"]
            let yuvSource = info.colorSpace.map(yuvMatrices.contains) ?? !(info.pixelFormat ?? "").hasPrefix("gbr")
            let range = yuvSource && (info.colorRange == "pc" || (info.pixelFormat ?? "").hasPrefix("yuvj")) ? "pc" : "tv"
            args += ["-vf", "scale=out_color_matrix=\(colorMatrix(info.colorSpace)):out_range=\(range),format=\(pix)"]
            if container == .webm {
                args += ["-c:v", "libvpx-vp9", "-crf", "\(options.crf)", "-b:v", "0", "-row-mt", "1", "-threads", "2"]
            } else {
                args += ["-c:v", "libx264", "-crf", "\(options.crf)", "-preset", "medium", "-threads", "2"]
            }
            args += ["-color_range", range]
            if let s = info.colorSpace, yuvMatrices.contains(s) { args += ["-colorspace", s] }
            if let t = info.colorTransfer { args += ["-color_trc", t] }
            if let p = info.colorPrimaries { args += ["-color_primaries", p] }
        }
        args += ["-fflags", "+bitexact", "-f", "matroska", "-y", output]
        return args
    }
}
