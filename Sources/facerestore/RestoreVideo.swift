// `facerestore restore` on videos: the flags mapped onto `VideoOptions`, a progress line (frames,
// frames per second, time left) on a terminal, one report line per video. The library decides
// everything else (`Restorer.restoreVideo`).

import FaceRestore
import Foundation

extension Restore {
    /// The video options the flags describe, around the per-frame `photo` options.
    func videoOptions(photo: PhotoOptions) -> VideoOptions {
        var v = VideoOptions()
        v.photo = photo
        v.crf = crf
        v.start = start
        v.duration = duration
        v.temporal = !noTemporal
        v.resume = skipExisting
        return v
    }

    /// Restores each video into `<output>/restored_videos/`; returns one line per failed video.
    func restoreVideos(_ videos: [BatchInput], restorer: Restorer, photo: PhotoOptions, report: BatchReportWriter?,
                       shard: String? = nil) -> [String] {
        let terminal = isatty(STDERR_FILENO) == 1
        var failures: [String] = []
        var restored = 0
        let started = DispatchTime.now().uptimeNanoseconds
        for (i, input) in videos.enumerated() {
            let tag = videos.count > 1 ? "[\(i + 1)/\(videos.count)] " : ""
            let out = Restorer.restoredVideoPath(input.path, name: input.name, output: output)
            var record = BatchRecord(path: input.listed, status: .done, model: restorer.modelName, shard: shard, host: nil, pid: getpid())
            if skipExisting, FileManager.default.fileExists(atPath: out) {
                record.status = .skipped
                record.model = nil
                if verbose { printError("\(tag)\(input.listed): skipped (its restored video exists)") }
            } else {
                do {
                    let result = try restorer.restoreVideo(file: input.path, to: out, options: videoOptions(photo: photo)) { p in
                        guard terminal else { return }
                        var line = "\r\u{1B}[K\(tag)\(input.listed): frame \(p.frames)" + (p.total.map { "/\($0)" } ?? "")
                        line += String(format: ", %.2f fps", p.framesPerSecond)
                        if let left = p.remaining, left.isFinite { line += ", ETA " + Self.clock(left) }
                        FileHandle.standardError.write(Data(line.utf8))
                    }
                    if terminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
                    restored += 1
                    record.status = result.copiedThrough ? .noFaces : .done
                    record.faces = result.maxFaces
                    record.timings = result.byStage
                    record.outputs = [out]
                    let fps = result.totalSeconds > 0 ? Double(result.frames - result.resumedFrames) / result.totalSeconds : 0
                    var detail = "\(result.frames) frames" + (result.resumedFrames > 0 ? " (\(result.resumedFrames) resumed)" : "")
                    detail += result.copiedThrough ? ", no face found: copied through unchanged"
                        : ", faces in \(result.framesWithFaces) frames" + String(format: ", %.2f fps", fps)
                    if verbose {
                        detail += String(format: "; decode %.2f s, restore %.2f s, track %.2f s, encode %.2f s, join %.2f s (video overhead %.1f%%); "
                                         + "CPU: ffmpeg %.2f s, facerestore %.2f s (ffmpeg %.1f%%)",
                                         result.decodeSeconds, result.restoreSeconds, result.trackSeconds, result.encodeSeconds,
                                         result.joinSeconds, 100 * result.overhead, result.toolCPUSeconds, result.ownCPUSeconds,
                                         100 * result.toolCPUShare)
                    }
                    print("\(tag)\(input.listed) → \(out): \(detail)")
                } catch {
                    if terminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
                    let line = "\(error)".replacingOccurrences(of: "\n", with: " ")
                    let named = line.hasPrefix(input.path + ":") || line.hasPrefix(input.listed + ":") ? line : "\(input.listed): \(line)"
                    printError("facerestore: \(named)")
                    failures.append(named)
                    record.status = .failed
                    record.model = nil
                    record.error = named
                }
            }
            if let report {
                record.host = currentHostName()
                record.time = BatchRecord.timestamp()
                do { try report.append(record) } catch { printError("facerestore: warning: \(error)") }
            }
        }
        let seconds = String(format: "%.2f", Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
        if restored > 0 { print("restored \(plural(restored, "video")) into \(output)/restored_videos (\(seconds) s)") }
        return failures
    }

    /// "1:05", "1:02:03".
    static func clock(_ seconds: Double) -> String {
        let s = Int(min(seconds, 1e7).rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
