// Batches: listing inputs (file, folder, subfolders, listings), the stable shard hash, shards from
// a cluster scheduler's environment, skip paths, report lines and the rules that merge reports.

import FaceRestore
import Foundation
import Testing

@Suite struct BatchListingTests {
    func touch(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: path, contents: Data([1]))
    }

    @Test func fileAndFolder() throws {
        let dir = try temporaryFolder("list-folder")
        defer { try? FileManager.default.removeItem(at: dir) }
        for f in ["b.jpg", "a.png", ".hidden.jpg", "a.jpg", "sub/c.jpg"] { try touch(dir.path + "/" + f) }
        let one = try BatchListing.path(dir.path + "/b.jpg")
        #expect(one.map(\.key) == [dir.path + "/b.jpg"] && one.map(\.name) == ["b"])
        let flat = try BatchListing.path(dir.path)
        #expect(flat.map(\.key) == ["a.jpg", "a.png", "b.jpg"])   // name order, hidden files and subfolders skipped
        #expect(flat.map(\.name) == ["a", "a_png", "b"])
        #expect(flat.map(\.listed) == flat.map(\.path) && flat[0].path == dir.path + "/a.jpg")
        #expect(throws: BatchError.noSuchInput(dir.path + "/nope")) { try BatchListing.path(dir.path + "/nope") }
        let empty = try temporaryFolder("list-empty")
        defer { try? FileManager.default.removeItem(at: empty) }
        #expect(throws: BatchError.noFiles(empty.path)) { try BatchListing.path(empty.path) }
    }

    @Test func recursiveMirrorsSubfoldersAndNamesArePerSubfolder() throws {
        let dir = try temporaryFolder("list-rec")
        defer { try? FileManager.default.removeItem(at: dir) }
        for f in ["top.jpg", "2019/box3/scan_001.tif", "2019/box3/scan_001.png", "2019/box4/scan_001.tif", ".git/x.jpg", "2019/.cache/y.jpg"] {
            try touch(dir.path + "/" + f)
        }
        // A linked folder is not followed (it could loop).
        try FileManager.default.createSymbolicLink(atPath: dir.path + "/2019/loop", withDestinationPath: dir.path)
        let inputs = try BatchListing.path(dir.path, recursive: true)
        #expect(inputs.map(\.key) == ["2019/box3/scan_001.png", "2019/box3/scan_001.tif", "2019/box4/scan_001.tif", "top.jpg"])
        #expect(inputs.map(\.subfolder) == ["2019/box3", "2019/box3", "2019/box4", ""])
        #expect(inputs.map(\.name) == ["2019/box3/scan_001", "2019/box3/scan_001_tif", "2019/box4/scan_001", "top"])
        #expect(inputs[2].path == dir.path + "/2019/box4/scan_001.tif")
    }

    @Test func listingWithCommentsRelativePathsAndStandardInput() throws {
        let dir = try temporaryFolder("list-file")
        defer { try? FileManager.default.removeItem(at: dir) }
        let text = "# scans\n\nbox1/a.jpg\n  box2/a.jpg  \n/abs/b.png\r\n# done\n"
        try Data(text.utf8).write(to: dir.appendingPathComponent("inputs.txt"))
        let inputs = try BatchListing.list(at: dir.path + "/inputs.txt")
        #expect(inputs.map(\.listed) == ["box1/a.jpg", "box2/a.jpg", "/abs/b.png"])
        #expect(inputs.map(\.key) == inputs.map(\.listed))
        #expect(inputs.map(\.path) == [dir.path + "/box1/a.jpg", dir.path + "/box2/a.jpg", "/abs/b.png"])
        #expect(inputs.map(\.name) == ["a", "a_jpg", "b"])   // flat: unique across the listing
        // Standard input: relative to the folder the caller gives (the current one).
        let stdin = try BatchListing.list(Data("x.jpg\n".utf8), name: "standard input", base: "/data")
        #expect(stdin.map(\.path) == ["/data/x.jpg"])
        // Mirrored: the folder part of each line, which must stay inside the listing's folder.
        let mirrored = try BatchListing.list(Data("box1/a.jpg\n./box2/a.jpg\n".utf8), name: "l", base: "/d", recursive: true)
        #expect(mirrored.map(\.name) == ["box1/a", "box2/a"])
        #expect(throws: BatchError.badListLine(list: "l", line: 2, entry: "../x/a.jpg",
                                               reason: "mirrored output folders need a relative path that stays inside the listing's folder")) {
            try BatchListing.list(Data("# c\n../x/a.jpg\n".utf8), name: "l", base: "/d", recursive: true)
        }
        #expect(throws: BatchError.noFiles("l")) { try BatchListing.list(Data("# nothing\n\n".utf8), name: "l", base: "/d") }
        #expect(throws: BatchError.noSuchInput(dir.path + "/missing.txt")) { try BatchListing.list(at: dir.path + "/missing.txt") }
    }
}

@Suite struct ShardTests {
    /// FNV-1a 64 computed here independently (the published test vectors pin it).
    func reference(_ s: String) -> UInt64 {
        var h: UInt64 = 14_695_981_039_346_656_037
        for b in Array(s.utf8) { h = (h ^ UInt64(b)).multipliedFullWidth(by: 1_099_511_628_211).low }
        return h
    }

    @Test func hashIsFNV1a64() throws {
        #expect(Shard.hash("") == 0xcbf2_9ce4_8422_2325)
        #expect(Shard.hash("a") == 0xaf63_dc4c_8601_ec8c)
        #expect(Shard.hash("foobar") == 0x8594_4171_f739_67e8)
        for key in ["2019/box3/scan_001.tif", "scan_0001.png", "photos/Ölberg.jpg"] { #expect(Shard.hash(key) == reference(key)) }
        // Fixed placements (also from Python: the same bytes, the same arithmetic).
        #expect(Shard.hash("2019/box3/scan_001.tif") == 0x82d3_48e4_9e48_9abd)
        #expect(try Shard(parsing: "2/3").contains("2019/box3/scan_001.tif"))
        #expect(try Shard(parsing: "0/3").contains("scan_0001.png"))
        #expect(try Shard(parsing: "5/7").contains("photos/Ölberg.jpg"))
    }

    @Test func shardsPartitionTheInputs() throws {
        let keys = (0..<200).map { "scan_\($0).jpg" }
        let shards = try (0..<3).map { try Shard(index: $0, count: 3) }
        for key in keys { #expect(shards.filter { $0.contains(key) }.count == 1) }
        #expect(shards.allSatisfy { s in keys.filter { s.contains($0) }.count > 40 })
    }

    @Test func parsing() throws {
        #expect(try Shard(parsing: "0/1") == Shard(index: 0, count: 1))
        for bad in ["3/3", "-1/3", "1/0", "1", "a/b", "1/2/3", ""] { #expect(throws: BatchError.self) { try Shard(parsing: bad) } }
    }

    @Test func environment() throws {
        #expect(try Shard.fromEnvironment(["JOB_COMPLETION_INDEX": "4", "JOB_COMPLETIONS": "10"]) == Shard(index: 4, count: 10))
        // Kubernetes wins when both are set.
        #expect(try Shard.fromEnvironment(["JOB_COMPLETION_INDEX": "0", "JOB_COMPLETIONS": "2", "SLURM_ARRAY_TASK_ID": "1",
                                           "SLURM_ARRAY_TASK_COUNT": "2"]) == Shard(index: 0, count: 2))
        #expect(try Shard.fromEnvironment(["SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "8"]) == Shard(index: 3, count: 8))
        #expect(try Shard.fromEnvironment(["SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "5", "SLURM_ARRAY_TASK_MIN": "1"])
                == Shard(index: 4, count: 5))
        #expect(try Shard.fromEnvironment(["SLURM_ARRAY_TASK_ID": "14", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "10",
                                           "SLURM_ARRAY_TASK_STEP": "2"]) == Shard(index: 2, count: 3))
        for env in [[:], ["JOB_COMPLETION_INDEX": "1"], ["JOB_COMPLETION_INDEX": "x", "JOB_COMPLETIONS": "3"],
                    ["JOB_COMPLETION_INDEX": "3", "JOB_COMPLETIONS": "3"], ["SLURM_ARRAY_TASK_ID": "2"],
                    ["SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1"]] as [[String: String]] {
            #expect(throws: BatchError.self, "\(env)") { try Shard.fromEnvironment(env) }
        }
        do { _ = try Shard.fromEnvironment([:]) } catch { #expect("\(error)".contains("JOB_COMPLETION_INDEX") && !"\(error)".contains("\n")) }
    }

    @Test func skipPathIsTheRestoredImage() {
        let input = BatchListing.named([BatchInput(path: "/in/2019/scan.TIF", listed: "2019/scan.TIF", key: "2019/scan.TIF", subfolder: "2019")])[0]
        #expect(Batch.restoredImagePath(input, aligned: false, output: "out", options: OutputOptions()) == "out/restored_imgs/2019/scan.TIF")
        #expect(Batch.restoredImagePath(input, aligned: false, output: "out", options: OutputOptions(format: .png, suffix: "v2"))
                == "out/restored_imgs/2019/scan_v2.png")
        #expect(Batch.restoredImagePath(input, aligned: true, output: "out", options: OutputOptions(format: .jpg))
                == "out/restored_faces/2019/scan_00.png")
    }
}

@Suite struct BatchReportTests {
    func line(_ path: String, _ status: BatchStatus, _ time: String, error: String? = nil) -> String {
        BatchRecord(path: path, status: status, error: error, shard: "0/1", host: "h", pid: 1, time: time).jsonLine + "\n"
    }

    @Test func recordIsOneJSONLine() throws {
        let record = BatchRecord(path: "a \"q\"\n.jpg", status: .noFaces, faces: 0, model: "GFPGANv1Clean",
                                 timings: ["encode": 0.5, "decode": 0.25], outputs: ["o/restored_imgs/a.jpg"], shard: "1/3",
                                 host: "node", pid: 42, time: BatchRecord.timestamp(Date(timeIntervalSince1970: 0)))
        let text = record.jsonLine
        #expect(!text.contains("\n"))
        #expect(text.hasPrefix("{\"path\":\"a \\\"q\\\"\\n.jpg\",\"status\":\"no_faces\",\"faces\":0,"))
        #expect(text.contains("\"timings\":{\"decode\":0.2500,\"encode\":0.5000}"))
        #expect(text.contains("\"time\":\"1970-01-01T00:00:00.000Z\""))
        let back = try JSONDecoder().decode(BatchRecord.self, from: Data(text.utf8))
        #expect(back == record)
        #expect(try JSONSerialization.jsonObject(with: Data(text.utf8)) is [String: Any])
    }

    @Test func writerAppendsWholeLines() throws {
        let dir = try temporaryFolder("report")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.path + "/r.jsonl"
        try Data(line("old.jpg", .done, "2000-01-01T00:00:00.000Z").utf8).write(to: URL(fileURLWithPath: path))
        let a = try BatchReportWriter(path: path), b = try BatchReportWriter(path: path)
        for k in 0..<20 { try (k % 2 == 0 ? a : b).append(BatchRecord(path: "\(k).jpg", status: .done)) }
        let merged = BatchReportMerge.merge([("r.jsonl", try Data(contentsOf: URL(fileURLWithPath: path)))])
        #expect(merged.warnings.isEmpty && merged.records.map(\.path) == ["old.jpg"] + (0..<20).map { "\($0).jpg" })
        #expect(throws: BatchError.self) { try BatchReportWriter(path: dir.path + "/no/such/folder/r.jsonl") }
    }

    @Test func mergeRules() {
        let first = line("a.jpg", .done, "2024-01-01T00:00:01.000Z")            // done, then skipped by a rerun
            + line("b.jpg", .failed, "2024-01-01T00:00:02.000Z", error: "b.jpg: empty file")   // failed, then done
            + line("c.jpg", .failed, "2024-01-01T00:00:03.000Z", error: "c.jpg: bad")          // failed, then skipped: stays failed
            + line("d.jpg", .noFaces, "2024-01-01T00:00:04.000Z")               // no_faces, then failed: stays no_faces
            + line("e.jpg", .failed, "2024-01-01T00:00:05.000Z", error: "e.jpg: x")            // failed twice: the later
        let rerun = line("a.jpg", .skipped, "2024-01-02T00:00:00.000Z")
            + line("b.jpg", .done, "2024-01-02T00:00:01.000Z")
            + line("c.jpg", .skipped, "2024-01-02T00:00:02.000Z")
            + line("d.jpg", .failed, "2024-01-02T00:00:03.000Z", error: "d.jpg: y")
            + line("e.jpg", .failed, "2024-01-02T00:00:04.000Z", error: "e.jpg: z")
            + line("f.jpg", .skipped, "2024-01-02T00:00:05.000Z")               // only skipped
        // The rerun's file first: time decides, not the order of the files.
        let merged = BatchReportMerge.merge([("rerun", Data(rerun.utf8)), ("first", Data(first.utf8))])
        #expect(merged.warnings.isEmpty)
        #expect(merged.records.map(\.path) == ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "f.jpg"])
        #expect(merged.records.map(\.status) == [.done, .done, .failed, .noFaces, .failed, .skipped])
        #expect(merged.records[4].error == "e.jpg: z")
        #expect(merged.counts == [.done: 2, .failed: 2, .noFaces: 1, .skipped: 1])
        #expect(merged.failed.map(\.path) == ["c.jpg", "e.jpg"])
    }

    @Test func truncatedLastLineIsIgnoredWithAWarning() {
        let whole = line("a.jpg", .done, "2024-01-01T00:00:01.000Z") + line("b.jpg", .done, "2024-01-01T00:00:02.000Z")
        let cut = whole + String(line("c.jpg", .done, "2024-01-01T00:00:03.000Z").prefix(25))
        let merged = BatchReportMerge.merge([("w0.jsonl", Data(cut.utf8))])
        #expect(merged.records.map(\.path) == ["a.jpg", "b.jpg"])
        #expect(merged.warnings == ["w0.jsonl:3: the last line is incomplete (a worker stopped while writing it); ignored"])
        // A complete last line without its newline counts; a bad line elsewhere is named.
        let noNewline = BatchReportMerge.merge([("w1", Data((whole.dropLast() + "").utf8)), ("w2", Data(("junk\n" + whole).utf8))])
        #expect(noNewline.records.count == 2 && noNewline.warnings == ["w2:1: not a report line; ignored"])
    }
}

/// The default batch (one photo at a time, the next read and the last written on their own threads):
/// the same files as restoring each input alone, every input started and finished once and in
/// listing order, report lines in listing order, failures recorded without stopping the batch.
@Suite struct BatchPipelineTests {
    @Test(.enabled(if: detectorFile != nil, "no RetinaFace weights"))
    func pipelineWritesWhatOneAtATimeWrites() throws {
        let dir = try temporaryFolder("pipeline")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(atPath: dir.path + "/in", withIntermediateDirectories: true)
        let group = try ImageIO.read(path: repoRoot.appendingPathComponent("examples/group.jpg").path).image
        let names = ["a", "b", "broken", "c", "d"]
        for (k, name) in names.enumerated() where name != "broken" {
            // Distinct photos: the group cropped by k pixels on the left.
            let w = group.width - 8 * k
            var px = [UInt8](repeating: 0, count: w * group.height * 3)
            for y in 0..<group.height {
                for x in 0..<w { for c in 0..<3 { px[(y * w + x) * 3 + c] = group.pixels[(y * group.width + x + 8 * k) * 3 + c] } }
            }
            try ImageIO.write(PixelImage(width: w, height: group.height, channels: 3, pixels: px), to: dir.path + "/in/\(name).png")
        }
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: dir.path + "/in/broken.png"))
        let restorer = try Library().tinyRestorer()
        let batch = Batch(try BatchListing.path(dir.path + "/in"), options: Batch.Options(output: dir.path + "/out"))
        #expect(batch.inputs.map(\.name) == names)
        let report = try BatchReportWriter(path: dir.path + "/r.jsonl")
        var events: [String] = []
        let summary = batch.run(restorer: restorer, options: PhotoOptions(), report: report) { event in
            switch event {
            case let .started(i, _): events.append("start \(i)")
            case let .finished(i, outcome): events.append("end \(i) \(outcome.status.rawValue)")
            case .stage: break
            }
        }
        #expect(summary.counts[.done] == 4 && summary.counts[.failed] == 1 && summary.failures.count == 1)
        #expect(summary.failures.first?.contains("broken.png") == true)
        // Each input starts once, in order, and finishes after it starts; finishes come in order.
        #expect(events.filter { $0.hasPrefix("start") } == (0..<5).map { "start \($0)" })
        #expect(events.filter { $0.hasPrefix("end") } == ["end 0 done", "end 1 done", "end 2 failed", "end 3 done", "end 4 done"])
        for i in 0..<5 { #expect(events.firstIndex(of: "start \(i)")! < events.firstIndex { $0.hasPrefix("end \(i) ") }!) }
        let lines = BatchReportMerge.merge([("r.jsonl", try Data(contentsOf: URL(fileURLWithPath: dir.path + "/r.jsonl")))]).records
        #expect(lines.map(\.path) == names.map { dir.path + "/in/\($0).png" } && lines.map(\.status) == [.done, .done, .failed, .done, .done])
        // The bytes each input gets restored and written on its own.
        for name in names where name != "broken" {
            let alone = try temporaryFolder("alone")
            defer { try? FileManager.default.removeItem(at: alone) }
            let written = try restorer.restore(file: dir.path + "/in/\(name).png").write(to: alone.path)
            #expect(written.count == 7)
            for path in written {
                let relative = String(path.dropFirst(alone.path.count))
                #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(contentsOf: URL(fileURLWithPath: dir.path + "/out" + relative)),
                        "\(relative) differs")
            }
        }
        // A rerun skipping existing outputs reads nothing and retries only the failure.
        let again = Batch(batch.listed, options: Batch.Options(output: dir.path + "/out", skipExisting: true))
        let second = again.run(restorer: restorer, options: PhotoOptions())
        #expect(second.counts[.skipped] == 4 && second.counts[.failed] == 1)
    }
}
