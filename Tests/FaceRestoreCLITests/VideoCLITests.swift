// `facerestore restore` on a folder that mixes a photo and a video (a clip made here with ffmpeg
// from an example photo, with a sine tone): the photo in restored_imgs, the video in
// restored_videos with its audio, a report line each, and a bad video as one line with exit 1.
// Skipped without ffmpeg or the RetinaFace weights.

import FaceRestore
import Foundation
import Testing

let ffmpegPresent = Restorer.canRestoreVideos

@Suite struct VideoCommand {
    let model = modelsFixtures.appendingPathComponent("gfpgan_clean_tiny.pth").path

    func ffmpeg(_ args: [String]) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["ffmpeg", "-v", "error", "-y"] + args
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    @Test(.enabled(if: ffmpegPresent && sharedDetector != nil, "ffmpeg or ../shared/weights is absent"))
    func folderMixingPhotosAndVideos() throws {
        let dir = try temporaryFolder("video-cli")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("in")
        try FileManager.default.createDirectory(at: input, withIntermediateDirectories: true)
        let photo = repoRoot.appendingPathComponent("examples/grace_hopper.jpg").path
        try FileManager.default.copyItem(atPath: photo, toPath: input.appendingPathComponent("a_photo.jpg").path)
        // Named .dat: videos are told by their bytes.
        let clip = input.appendingPathComponent("b_clip.dat").path
        #expect(try ffmpeg(["-loop", "1", "-framerate", "25", "-i", photo, "-f", "lavfi", "-i", "sine=frequency=300",
                            "-vf", "scale=320:-2,crop=320:240", "-t", "0.6", "-r", "25", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                            "-c:a", "aac", "-f", "mp4", clip]) == 0)
        let out = dir.appendingPathComponent("out").path, report = dir.appendingPathComponent("r.jsonl").path
        let r = try run(["restore", "-i", input.path, "-o", out, "--model-path", model, "--detector", sharedDetector!, "--no-parse",
                         "--threads", "2", "--report", report])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(FileManager.default.fileExists(atPath: out + "/restored_imgs/a_photo.jpg"))
        let video = out + "/restored_videos/b_clip.dat"
        #expect(Restorer.canRestoreVideos && VideoContainer.of(fileAt: video) == .mp4)
        let info = try Restorer.probeVideo(video)
        #expect(info.frameCount == 15 && info.audioStreams == 1 && info.width == 320 && info.height == 240)
        let lines = try reportLines(report)
        #expect(lines.count == 2)
        let videoLine = try #require(lines.first { $0.path.hasSuffix("b_clip.dat") })
        #expect(videoLine.status == .done && videoLine.outputs == [video] && (videoLine.faces ?? 0) >= 1)

        // A truncated video in the folder: one line naming it, exit 1, no output for it.
        let bytes = try #require(FileManager.default.contents(atPath: clip))
        try bytes.prefix(bytes.count / 3).write(to: URL(fileURLWithPath: input.appendingPathComponent("c_cut.mp4").path))
        let again = try run(["restore", "-i", input.path, "-o", out, "--model-path", model, "--detector", sharedDetector!, "--no-parse",
                             "--threads", "2", "--skip-existing"])
        #expect(again.status == 1)
        let failures = again.stderr.split(separator: "\n").filter { $0.contains("c_cut.mp4: cannot read the video") }
        #expect(failures.count >= 1, "\(again.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out + "/restored_videos/c_cut.mp4"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: out + "/restored_videos") == ["b_clip.dat"])
    }
}
