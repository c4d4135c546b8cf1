// Videos end to end on short clips made here with ffmpeg from the example photos (moving, zooming
// and turning faces, a sine-tone audio track): streams, timing, audio and rotation kept (checked
// with ffprobe), frame-by-frame mode equal to the photo path, resuming from segments, bad inputs
// as one line with nothing left behind, and temporal mode steadier than frame by frame. Skipped
// without ffmpeg (./scripts/setup installs it) or the RetinaFace weights.

import FaceRestore
import Foundation
import Testing

let videoToolsPresent = Restorer.canRestoreVideos

/// Runs a tool from the PATH; its exit status and standard output.
@discardableResult
func tool(_ name: String, _ arguments: [String]) throws -> (status: Int32, output: Data) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [name] + arguments
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, data)
}

/// ffprobe's JSON for the first stream of `type` ("v" or "a"), frames counted.
func probeStream(_ path: String, _ type: String) throws -> [String: Any] {
    let (status, data) = try tool("ffprobe", ["-v", "error", "-count_frames", "-select_streams", "\(type):0", "-show_streams", "-of", "json", path])
    #expect(status == 0)
    let root = try JSONSerialization.jsonObject(with: data) as? [String: Any]
    return (root?["streams"] as? [[String: Any]])?.first ?? [:]
}

/// A stream's packets as stored (`-c copy` to raw data).
func streamHash(_ path: String, _ map: String) throws -> Data {
    let (status, data) = try tool("ffmpeg", ["-v", "error", "-i", path, "-map", map, "-c", "copy", "-f", "data", "-"])
    #expect(status == 0 && !data.isEmpty)
    return data
}

func rotationOf(_ stream: [String: Any]) -> Int {
    for side in stream["side_data_list"] as? [[String: Any]] ?? [] {
        if let r = side["rotation"] as? Int { return r }
    }
    return 0
}

/// A clip made from an example photo: `filter` turns the looped photo into 25 fps frames.
func makeClip(_ path: String, photo: String = "grace_hopper.jpg", seconds: Double = 2, filter: String,
              audio: Bool = true, codec: [String] = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast"],
              rotation: Int? = nil) throws {
    var args = ["-v", "error", "-y", "-loop", "1", "-framerate", "25", "-i", repoRoot.appendingPathComponent("examples/" + photo).path]
    if audio { args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"] }
    args += ["-filter_complex", "[0:v]\(filter)[v]", "-map", "[v]"]
    if audio { args += ["-map", "1:a", "-c:a", "aac"] }
    args += ["-t", "\(seconds)", "-r", "25"] + codec
    let target = rotation == nil ? path : path + ".plain." + URL(fileURLWithPath: path).pathExtension
    try #require(try tool("ffmpeg", args + [target]).status == 0)
    if let rotation {
        try #require(try tool("ffmpeg", ["-v", "error", "-y", "-i", target, "-map", "0", "-c", "copy", "-metadata:s:v:0", "rotate=\(rotation)", path]).status == 0)
        try FileManager.default.removeItem(atPath: target)
    }
}

/// The moving face: zoom and pan in and out, a small turn.
let movingFilter = "scale=480:-2,zoompan=z='1.15+0.1*sin(on/8)':x='iw/2-(iw/zoom/2)+12*sin(on/6)':y='ih/2-(ih/zoom/2)+6*cos(on/9)':d=1:s=320x240:fps=25,rotate=0.06*sin(t*4):c=black"
/// The still face: fresh noise in every frame (the detector's landmarks jitter with it).
let stillFilter = "scale=360:-2,crop=320:240:20:20,noise=alls=10:allf=t"

@Suite(.serialized) struct VideoTests {
    func restorer(model: String? = nil, parser: String? = nil) throws -> Restorer {
        var c = Restorer.Configuration(model: .file(model ?? fixture("gfpgan_clean_tiny.pth")))
        c.detector = .file(detectorFile!)
        c.useParser = parser != nil
        c.parser = parser
        c.threads = 2
        c.measureIdentity = false
        return try Restorer(c, store: ModelStore(directory: try temporaryFolder("empty").path))
    }

    func frames(_ path: String) throws -> [PixelImage] {
        var all: [PixelImage] = []
        try VideoFlicker.forEachFrame(of: path) { _, f in all.append(f) }
        return all
    }

    @Test func containersAreRecognisedByContent() {
        func bytes(_ s: String, _ rest: [UInt8] = []) -> [UInt8] { Array(s.utf8) + rest }
        #expect(VideoContainer.sniff([0, 0, 0, 0x20] + bytes("ftypisom") + [0, 0]) == .mp4)
        #expect(VideoContainer.sniff([0, 0, 0, 0x14] + bytes("ftypqt  ")) == .mov)
        #expect(VideoContainer.sniff([0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x82, 0x88] + bytes("matroska")) == .mkv)
        #expect(VideoContainer.sniff([0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x82, 0x84] + bytes("webm")) == .webm)
        #expect(VideoContainer.sniff(bytes("RIFF") + [1, 2, 3, 4] + bytes("AVI LIST")) == .avi)
        #expect(VideoContainer.sniff(bytes("RIFF") + [1, 2, 3, 4] + bytes("WEBPVP8 ")) == nil)
        #expect(VideoContainer.sniff([0xFF, 0xD8, 0xFF, 0xE0]) == nil)
        #expect(VideoContainer.sniff([]) == nil)
        #expect(VideoContainer.of(fileAt: repoRoot.appendingPathComponent("examples/group.jpg").path) == nil)
    }

    @Test func probeAnswersMissingFieldsWithErrors() throws {
        func parse(_ json: String) throws -> VideoInfo { try VideoInfo.parse(json: Data(json.utf8), path: "x.mp4") }
        #expect(throws: VideoError.self) { try parse("not json") }
        #expect(throws: VideoError.noVideoStream(path: "x.mp4")) { try parse(#"{"streams":[{"codec_type":"audio"}]}"#) }
        #expect(throws: VideoError.self) { try parse(#"{"streams":[{"codec_type":"video","width":0,"height":10,"avg_frame_rate":"25/1"}]}"#) }
        #expect(throws: VideoError.self) { try parse(#"{"streams":[{"codec_type":"video","width":10,"height":10,"avg_frame_rate":"0/0"}]}"#) }
        #expect(throws: VideoError.self) {
            try parse(#"{"streams":[{"codec_type":"video","width":10,"height":10,"avg_frame_rate":"25/1","side_data_list":[{"rotation":45}]}]}"#)
        }
        let ok = try parse(#"{"streams":[{"codec_type":"video","width":64,"height":48,"avg_frame_rate":"30000/1001","nb_frames":"12","side_data_list":[{"rotation":-90}]},{"codec_type":"audio"}],"format":{"duration":"0.4"}}"#)
        #expect(ok.width == 64 && ok.height == 48 && ok.frameCount == 12 && ok.rotation == 270 && ok.audioStreams == 1)
        #expect(abs(ok.frameRate.value - 29.97) < 0.01)
    }

    @Test func oneEuroFilterSmoothsAStillValueAndBoundsTheLag() {
        var f = OneEuroFilter(minCutoff: 0.3, beta: 0.1, maxLag: 2)
        // A still value with ±1 noise: the output moves far less than the input.
        var outputs: [Double] = []
        for i in 0..<100 { outputs.append(f.filter(100 + (i % 2 == 0 ? 1 : -1), interval: 0.04)) }
        let spread = (outputs.dropFirst(20).max() ?? 0) - (outputs.dropFirst(20).min() ?? 0)
        #expect(spread < 0.5, "noise of 2 peak to peak kept at \(spread)")
        // A jump: the output never trails by more than the bound.
        for _ in 0..<5 {
            let y = f.filter(150, interval: 0.04)
            #expect(abs(150 - y) <= 2 + 1e-9)
        }
    }

    /// Tracks: jittery landmarks of a still face are steadied, a moving face is followed within
    /// the lag bound, two faces keep their own tracks, and a scene cut drops them.
    @Test func trackerSmoothsFollowsAndResetsAtCuts() {
        func face(_ x: Float, _ y: Float, jitter: Float = 0) -> DetectedFace {
            let l: [Float] = [x - 20, y - 10, x + 20, y - 10, x, y + 5, x - 15, y + 20, x + 15, y + 20].enumerated().map { $1 + ($0 % 2 == 0 ? jitter : -jitter) }
            return DetectedFace(box: [x - 40, y - 50, x + 40, y + 50], score: 0.99, landmarks: l)
        }
        var tracker = FaceTracker(frameRate: 25)
        var raw: [Float] = [], smooth: [Float] = []
        for i in 0..<50 {
            let j: Float = i % 2 == 0 ? 1.5 : -1.5
            let out = tracker.smooth([face(100, 100, jitter: j), face(300, 100)])
            #expect(out.count == 2 && tracker.lastTrackIDs == [0, 1])
            if i >= 10 { raw.append(face(100, 100, jitter: j).landmarks[0]); smooth.append(out[0].landmarks[0]) }
        }
        func spread(_ v: [Float]) -> Float { (v.max() ?? 0) - (v.min() ?? 0) }
        #expect(spread(smooth) < 0.3 * spread(raw), "jitter \(spread(raw)) px kept at \(spread(smooth)) px")
        // The first face moves 8 px a frame: followed, never more than 0.12 eye distances behind.
        for i in 1...20 {
            let moved = face(100 + Float(8 * i), 100)
            let out = tracker.smooth([moved, face(300, 100)])
            #expect(tracker.lastTrackIDs == [0, 1])
            #expect(abs(out[0].landmarks[0] - moved.landmarks[0]) <= 0.12 * 40 + 1e-3)
        }
        // A scene cut (a black frame after a white one) drops both tracks: new ids.
        tracker.observe(frame: PixelImage(width: 64, height: 36, channels: 3, pixels: [UInt8](repeating: 255, count: 64 * 36 * 3)))
        tracker.observe(frame: PixelImage(width: 64, height: 36, channels: 3, pixels: [UInt8](repeating: 0, count: 64 * 36 * 3)))
        #expect(tracker.sceneCuts == 1 && tracker.trackCount == 0)
        _ = tracker.smooth([face(500, 100)])
        #expect(tracker.lastTrackIDs == [2])
    }

    @Test(.enabled(if: videoToolsPresent && detectorFile != nil, "ffmpeg or the RetinaFace weights are absent"))
    func movingRotatedClipKeepsFramesTimingAudioAndRotation() throws {
        let dir = try temporaryFolder("video-moving")
        defer { try? FileManager.default.removeItem(at: dir) }
        let clip = dir.appendingPathComponent("clip.mp4").path
        // Stored turned a quarter clockwise and tagged to be shown turned back: upright faces on screen.
        try makeClip(clip, filter: movingFilter + ",transpose=clock", rotation: 90)
        let out = dir.appendingPathComponent("out/restored_videos/clip.mp4").path
        let result = try restorer().restoreVideo(file: clip, to: out)
        let (src, dst) = (try probeStream(clip, "v"), try probeStream(out, "v"))
        #expect(dst["nb_read_frames"] as? String == src["nb_read_frames"] as? String && result.frames == 50)
        #expect(dst["r_frame_rate"] as? String == src["r_frame_rate"] as? String)
        #expect(dst["width"] as? Int == src["width"] as? Int && dst["height"] as? Int == src["height"] as? Int)
        let (d0, d1) = (Double(src["duration"] as? String ?? "") ?? -1, Double(dst["duration"] as? String ?? "") ?? -2)
        #expect(abs(d0 - d1) <= 1.0 / 25 + 1e-6, "durations \(d0) and \(d1)")
        #expect(rotationOf(dst) == 90 && rotationOf(src) == 90)
        #expect(try streamHash(out, "0:a") == (try streamHash(clip, "0:a")), "the audio stream is copied bit for bit")
        // Faces are found only if frames were turned upright before detection.
        #expect(result.framesWithFaces >= 45, "faces in \(result.framesWithFaces) of 50 frames")
        #expect(!result.copiedThrough)
        // Nothing else is left in the output folder.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("out/restored_videos").path) == ["clip.mp4"])
    }

    /// Frame-by-frame mode is the photo path: each frame equals `restore` on that frame as an
    /// image (lossless output, within one gray level).
    @Test(.enabled(if: videoToolsPresent && detectorFile != nil, "ffmpeg or the RetinaFace weights are absent"))
    func noTemporalFramesEqualThePhotoPath() throws {
        let dir = try temporaryFolder("video-photo")
        defer { try? FileManager.default.removeItem(at: dir) }
        let clip = dir.appendingPathComponent("clip.mkv").path
        try makeClip(clip, seconds: 1, filter: movingFilter)
        let restorer = try restorer()
        var options = VideoOptions()
        options.temporal = false
        options.codec = .lossless
        let out = dir.appendingPathComponent("restored.mkv").path
        let result = try restorer.restoreVideo(file: clip, to: out, options: options)
        #expect(result.frames == 25 && result.framesWithFaces > 20)
        let restored = try frames(out)
        #expect(restored.count == 25)
        for k in [0, 7, 13, 24] {
            let png = dir.appendingPathComponent("frame\(k).png").path
            try #require(try tool("ffmpeg", ["-v", "error", "-y", "-i", clip, "-vf", "select=eq(n\\,\(k))", "-frames:v", "1", png]).status == 0)
            let photo = try restorer.restore(file: png, options: PhotoOptions(upscale: 1))
            let image = try #require(photo.image)
            #expect(photo.faces.count >= 1)
            let maxDiff = zip(image.pixels, restored[k].pixels).map { abs(Int($0) - Int($1)) }.max() ?? 255
            #expect(image.width == restored[k].width && image.height == restored[k].height && maxDiff <= 1, "frame \(k): \(maxDiff)")
        }
    }

    /// An interrupted run continues from its complete segments; the result has the same frames
    /// as an uninterrupted run, and two runs write the same bytes.
    @Test(.enabled(if: videoToolsPresent && detectorFile != nil, "ffmpeg or the RetinaFace weights are absent"))
    func interruptedRunResumesFromSegments() throws {
        let dir = try temporaryFolder("video-resume")
        defer { try? FileManager.default.removeItem(at: dir) }
        let clip = dir.appendingPathComponent("clip.mp4").path
        try makeClip(clip, seconds: 1.2, filter: movingFilter)
        let restorer = try restorer()
        var options = VideoOptions()
        options.temporal = false
        options.codec = .lossless
        options.segmentFrames = 10
        let whole = dir.appendingPathComponent("whole.mp4").path, again = dir.appendingPathComponent("again.mp4").path
        _ = try restorer.restoreVideo(file: clip, to: whole, options: options)
        _ = try restorer.restoreVideo(file: clip, to: again, options: options)
        #expect(FileManager.default.contents(atPath: whole) == FileManager.default.contents(atPath: again), "same input and options, same bytes")

        struct Interrupted: Error {}
        let out = dir.appendingPathComponent("out/clip.mp4").path
        #expect(throws: Interrupted.self) {
            try restorer.restoreVideo(file: clip, to: out, options: options) { p in if p.frames == 15 { throw Interrupted() } }
        }
        #expect(!FileManager.default.fileExists(atPath: out))
        options.resume = true
        let resumed = try restorer.restoreVideo(file: clip, to: out, options: options)
        #expect(resumed.resumedFrames == 10 && resumed.frames == 30)
        let (a, b) = (try frames(whole), try frames(out))
        #expect(a.count == 30 && b.count == 30)
        #expect(zip(a, b).allSatisfy { $0.pixels == $1.pixels })
        #expect(try streamHash(out, "0:a") == (try streamHash(clip, "0:a")))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("out").path) == ["clip.mp4"])
    }

    /// `start` and `duration` restore a part: its frames, and the audio of that part.
    @Test(.enabled(if: videoToolsPresent && detectorFile != nil, "ffmpeg or the RetinaFace weights are absent"))
    func startAndDurationRestoreAPart() throws {
        let dir = try temporaryFolder("video-part")
        defer { try? FileManager.default.removeItem(at: dir) }
        let clip = dir.appendingPathComponent("clip.mp4").path
        try makeClip(clip, seconds: 1.2, filter: movingFilter)
        var options = VideoOptions()
        options.start = 0.4
        options.duration = 0.4
        let out = dir.appendingPathComponent("part.mp4").path
        let result = try restorer().restoreVideo(file: clip, to: out, options: options)
        #expect(result.frames == 10)
        let (video, audio) = (try probeStream(out, "v"), try probeStream(out, "a"))
        #expect(video["nb_read_frames"] as? String == "10")
        let d = Double(audio["duration"] as? String ?? "") ?? 0
        #expect(abs(d - 0.4) < 0.05, "audio of the part: \(d) s")
    }

    @Test(.enabled(if: videoToolsPresent && detectorFile != nil, "ffmpeg or the RetinaFace weights are absent"))
    func badVideosFailInOneLineAndLeaveNothing() throws {
        let dir = try temporaryFolder("video-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let restorer = try restorer()
        let outDir = dir.appendingPathComponent("out")
        func attempt(_ path: String) -> String? {
            do {
                _ = try restorer.restoreVideo(file: path, to: outDir.appendingPathComponent("x.mp4").path)
                return nil
            } catch {
                return "\(error)"
            }
        }
        // Truncated: the first half of an MP4 (its index is at the end).
        let clip = dir.appendingPathComponent("clip.mp4").path
        try makeClip(clip, seconds: 1, filter: movingFilter)
        let bytes = try #require(FileManager.default.contents(atPath: clip))
        let truncated = dir.appendingPathComponent("truncated.mp4").path
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: truncated))
        // Corrupt: Matroska's magic, then noise.
        let corrupt = dir.appendingPathComponent("corrupt.mkv").path
        try Data([0x1A, 0x45, 0xDF, 0xA3] + (0..<4000).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 7) }).write(to: URL(fileURLWithPath: corrupt))
        // Audio only.
        let audio = dir.appendingPathComponent("tone.m4a").path
        try #require(try tool("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "sine=frequency=440", "-t", "1", "-c:a", "aac", audio]).status == 0)
        #expect(VideoContainer.of(fileAt: audio) == .mp4)
        for (path, expected) in [(truncated, "cannot read the video"), (corrupt, "cannot read the video"), (audio, "has no video stream")] {
            let message = try #require(attempt(path), "\(path) was restored")
            #expect(message.hasPrefix(path + ": ") && message.contains(expected) && !message.contains("\n"), "\(message)")
            let left = (try? FileManager.default.contentsOfDirectory(atPath: outDir.path)) ?? []
            #expect(left.isEmpty, "left behind: \(left)")
        }

        // No face: the source's streams are copied through, and the result says so.
        let noFace = dir.appendingPathComponent("pattern.mp4").path
        try #require(try tool("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-f", "lavfi", "-i", "sine",
                                         "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", noFace]).status == 0)
        let out = outDir.appendingPathComponent("pattern.mp4").path
        let result = try restorer.restoreVideo(file: noFace, to: out)
        #expect(result.copiedThrough && result.faces == 0 && result.frames == 25)
        #expect(try streamHash(out, "0:v") == (try streamHash(noFace, "0:v")))
        #expect(try streamHash(out, "0:a") == (try streamHash(noFace, "0:a")))
        #expect(try FileManager.default.contentsOfDirectory(atPath: outDir.path) == ["pattern.mp4"])
    }

    /// Temporal mode against frame by frame on a still face with jitter and noise: the flicker
    /// measure (VideoFlicker) inside the face, motion compensated. Full-size models when
    /// FACERESTORE_VIDEO_MODEL (and FACERESTORE_VIDEO_PARSER) name them; docs/performance.md.
    @Test(.enabled(if: videoToolsPresent && detectorFile != nil, "ffmpeg or the RetinaFace weights are absent"))
    func temporalModeIsSteadierThanFrameByFrame() throws {
        let dir = try temporaryFolder("video-flicker")
        defer { try? FileManager.default.removeItem(at: dir) }
        let env = ProcessInfo.processInfo.environment
        let clip = dir.appendingPathComponent("still.mkv").path
        let seconds = Double(env["FACERESTORE_VIDEO_SECONDS"] ?? "") ?? 2
        try makeClip(clip, seconds: seconds, filter: stillFilter, codec: ["-c:v", "libx264rgb", "-qp", "0", "-preset", "veryfast"])
        let restorer = try restorer(model: env["FACERESTORE_VIDEO_MODEL"], parser: env["FACERESTORE_VIDEO_PARSER"])
        // The face region: the face found in the first frame.
        let first = try #require(try frames(clip).first)
        let faces = try restorer.restore(DecodedImage(image: first, format: .png, sourceChannels: 3, sourceDepth: 8), name: "first",
                                         options: PhotoOptions(upscale: 1)).faces
        let box = try #require(faces.first?.detection.box)
        let region = VideoFlicker.Region(x: Int(box[0]), y: Int(box[1]), width: Int(box[2] - box[0]), height: Int(box[3] - box[1]))
        var options = VideoOptions()
        options.codec = .lossless
        var flicker: [Bool: Double] = [:]
        for temporal in [false, true] {
            options.temporal = temporal
            let out = dir.appendingPathComponent("out-\(temporal).mkv").path
            _ = try restorer.restoreVideo(file: clip, to: out, options: options)
            flicker[temporal] = try VideoFlicker.measure(path: out, region: region)
        }
        let input = try VideoFlicker.measure(path: clip, region: region)
        let (plain, steady) = (flicker[false] ?? 0, flicker[true] ?? 0)
        print(String(format: "flicker (mean abs frame difference in the face, gray levels): input %.2f, --no-temporal %.2f, temporal %.2f (%.0f%% lower)",
                     input, plain, steady, 100 * (1 - steady / plain)))
        #expect(steady <= 0.7 * plain, "temporal \(steady) against frame by frame \(plain)")
    }
}
