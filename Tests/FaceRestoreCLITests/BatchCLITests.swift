// `facerestore restore` over large batches: three workers sharing a listing by shard, one killed
// and rerun with --skip-existing, reports merged by `facerestore report`; subfolders mirrored,
// listings on standard input, and the exit status of a batch that cannot run.

import FaceRestore
import Foundation
import Testing

/// Starts the built binary with its output going to files in `dir` (`name.out`, `name.err`).
func start(_ args: [String], in dir: URL, name: String) throws -> Process {
    let p = Process()
    p.executableURL = binary
    p.arguments = args
    _ = FileManager.default.createFile(atPath: dir.path + "/\(name).out", contents: nil)
    _ = FileManager.default.createFile(atPath: dir.path + "/\(name).err", contents: nil)
    p.standardOutput = FileHandle(forWritingAtPath: dir.path + "/\(name).out")
    p.standardError = FileHandle(forWritingAtPath: dir.path + "/\(name).err")
    try p.run()
    return p
}

/// Runs the built binary with `input` on its standard input.
func run(_ args: [String], stdin input: String) throws -> RunResult {
    let p = Process()
    p.executableURL = binary
    p.arguments = args
    let inPipe = Pipe(), out = Pipe(), err = Pipe()
    p.standardInput = inPipe
    p.standardOutput = out
    p.standardError = err
    try p.run()
    inPipe.fileHandleForWriting.write(Data(input.utf8))
    try inPipe.fileHandleForWriting.close()
    let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return RunResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}

func reportLines(_ path: String) throws -> [BatchRecord] {
    let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    return try text.split(separator: "\n").map { try JSONDecoder().decode(BatchRecord.self, from: Data($0.utf8)) }
}

@Suite struct BatchCommand {
    let face = cliFixtures.appendingPathComponent("face.png").path
    let model = modelsFixtures.appendingPathComponent("gfpgan_clean_tiny.pth").path

    /// The issue's test: 30 listed inputs (two corrupt, one missing) over three concurrent
    /// workers; one worker is killed with SIGKILL once it has finished its first input (its
    /// share is about ten inputs of some 0.1 s each, so the kill lands mid-way) and rerun with
    /// --skip-existing. Every good input is written once, nothing else and no temporary file is
    /// left, and the merged reports give every input once with its status.
    @Test func threeShardsOneKilledAndRerun() throws {
        let dir = try temporaryFolder("shards")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.path + "/in", out = dir.path + "/out"
        try FileManager.default.createDirectory(atPath: input, withIntermediateDirectories: true)
        let entries = (0..<30).map { String(format: "scan_%02d.png", $0) }
        // The listing's lines (relative to its folder) are what decide the shards.
        let shardOf = entries.map { Int(Shard.hash("in/" + $0) % 3) }
        let victim = 1
        let victimEntries = entries.indices.filter { shardOf[$0] == victim }
        try #require(victimEntries.count >= 4, "shard 1 gets \(victimEntries.count) of 30")
        let others = entries.indices.filter { shardOf[$0] != victim }
        let corrupt = [others[0], others[others.count - 1]], missing = others[others.count / 2]
        let png = try Data(contentsOf: URL(fileURLWithPath: face))
        for (k, name) in entries.enumerated() {
            let path = input + "/" + name
            if k == corrupt[0] { _ = FileManager.default.createFile(atPath: path, contents: Data()) }
            else if k == corrupt[1] { _ = FileManager.default.createFile(atPath: path, contents: png.prefix(png.count / 2)) }
            else if k != missing { _ = FileManager.default.createFile(atPath: path, contents: png) }
        }
        try Data(("# the archive\n" + entries.map { "in/" + $0 }.joined(separator: "\n") + "\n").utf8)
            .write(to: URL(fileURLWithPath: dir.path + "/list.txt"))
        let bad = Set(corrupt + [missing]), good = entries.indices.filter { !bad.contains($0) }

        func args(_ shard: Int, report: String, skip: Bool = false) -> [String] {
            ["restore", "--list", dir.path + "/list.txt", "-o", out, "--aligned", "--model-path", model, "--threads", "1",
             "--shard", "\(shard)/3", "--report", dir.path + "/" + report] + (skip ? ["--skip-existing"] : [])
        }
        // Workers 0 and 2 append to one shared report; the victim has its own.
        var workers = try [0, 1, 2].map { try start(args($0, report: $0 == victim ? "victim.jsonl" : "shared.jsonl"), in: dir, name: "w\($0)") }
        defer { for w in workers where w.isRunning { kill(w.processIdentifier, SIGKILL) } }
        let deadline = Date().addingTimeInterval(120)
        while try reportLines(dir.path + "/victim.jsonl").isEmpty, workers[victim].isRunning, Date() < deadline { usleep(2_000) }
        let victimPid = workers[victim].processIdentifier
        kill(victimPid, SIGKILL)
        workers[victim].waitUntilExit()
        #expect(workers[victim].terminationReason == .uncaughtSignal, "the victim finished before it was killed")
        let beforeKill = try reportLines(dir.path + "/victim.jsonl")
        print("shard test: the victim was killed after \(beforeKill.count) of its \(victimEntries.count) inputs")
        #expect(!beforeKill.isEmpty && beforeKill.count < victimEntries.count, "killed after \(beforeKill.count) of \(victimEntries.count)")
        #expect(beforeKill.map(\.path) == victimEntries.prefix(beforeKill.count).map { "in/" + entries[$0] })
        for w in [0, 2] {
            workers[w].waitUntilExit()
            let failed = entries.indices.contains { shardOf[$0] == w && bad.contains($0) }
            #expect(workers[w].terminationStatus == (failed ? 1 : 0), "\((try? String(contentsOfFile: dir.path + "/w\(w).err", encoding: .utf8)) ?? "")")
        }
        // What a kill mid-write can leave: temporary files of the dead process (both name forms).
        let faces = out + "/restored_faces"
        try FileManager.default.createDirectory(atPath: faces, withIntermediateDirectories: true)
        for tmp in [".x_00.png.tmp-\(victimPid)-deadbeef", ".y_00.png.tmp-\(temporaryFileHostTag)-\(victimPid)-0badf00d"] {
            _ = FileManager.default.createFile(atPath: faces + "/" + tmp, contents: Data([1]))
        }
        // The victim's shard runs again.
        workers[victim] = try start(args(victim, report: "victim.jsonl", skip: true), in: dir, name: "rerun")
        workers[victim].waitUntilExit()
        let rerunOut = try String(contentsOfFile: dir.path + "/rerun.out", encoding: .utf8)
        let rerunErr = try String(contentsOfFile: dir.path + "/rerun.err", encoding: .utf8)
        #expect(workers[victim].terminationStatus == 0, "\(rerunErr)")
        let finished = beforeKill.filter { $0.status == .done }.count
        #expect(finished == 0 || rerunOut.contains("skipped \(finished) input"), "\(rerunOut)")

        // The union of outputs: exactly the good inputs, and nothing else.
        let expected = good.map { entries[$0].replacingOccurrences(of: ".png", with: "_00.png") }.sorted()
        for folder in ["restored_faces", "cropped_faces", "cmp"] {
            #expect(try FileManager.default.contentsOfDirectory(atPath: out + "/" + folder).sorted() == expected, "\(folder)")
        }
        // Each good input restored by exactly one worker, once.
        let lines = try reportLines(dir.path + "/shared.jsonl") + reportLines(dir.path + "/victim.jsonl")
        for k in entries.indices {
            let mine = lines.filter { $0.path == "in/" + entries[k] }
            #expect(mine.allSatisfy { $0.shard == "\(shardOf[k])/3" && $0.pid != nil && $0.host != nil && $0.time != nil })
            #expect(mine.filter { $0.status == .done }.count == (bad.contains(k) ? 0 : 1), "\(entries[k]): \(mine.map(\.status))")
        }
        #expect(lines.filter { $0.status == .skipped }.map(\.path) == beforeKill.filter { $0.status == .done }.map(\.path))
        let done = try #require(lines.first { $0.status == .done })
        #expect(done.faces == 1 && done.model == "GFPGANv1Clean" && done.outputs?.count == 3 && done.timings?["network"] != nil)

        // Merged: every input once, corrupt and missing failed, the rest done.
        let merged = try run(["report", dir.path + "/shared.jsonl", dir.path + "/victim.jsonl"])
        #expect(merged.status == 1, "\(merged.stderr)")
        let records = try merged.stdout.split(separator: "\n").map { try JSONDecoder().decode(BatchRecord.self, from: Data($0.utf8)) }
        #expect(records.map(\.path).sorted() == entries.map { "in/" + $0 })
        for r in records {
            let k = entries.firstIndex(of: String(r.path.dropFirst(3))) ?? -1
            #expect(r.status == (bad.contains(k) ? .failed : .done), "\(r.path)")
        }
        let missingError = records.first { $0.path == "in/" + entries[missing] }?.error ?? ""
        #expect(missingError.contains(entries[missing]) && missingError.contains("no such file"), "\(missingError)")
        let summary = try run(["report", "--summary", dir.path + "/shared.jsonl", dir.path + "/victim.jsonl"])
        #expect(summary.stdout.hasPrefix("30 inputs: 27 done, 0 skipped, 0 no_faces, 3 failed\nfailed:\n"), "\(summary.stdout)")
    }

    @Test func subfoldersAreMirroredAndSkippedOnRerun() throws {
        let dir = try temporaryFolder("recursive")
        defer { try? FileManager.default.removeItem(at: dir) }
        for sub in ["2019/box3", "2020"] { try FileManager.default.createDirectory(atPath: dir.path + "/in/" + sub, withIntermediateDirectories: true) }
        for f in ["2019/box3/a.png", "2020/a.png", "b.png"] { try FileManager.default.copyItem(atPath: face, toPath: dir.path + "/in/" + f) }
        let args = ["restore", "-i", dir.path + "/in", "--recursive", "-o", dir.path + "/out", "--aligned", "--model-path", model,
                    "--report", dir.path + "/r.jsonl"]
        let first = try run(args)
        #expect(first.status == 0, "\(first.stderr)")
        for f in ["2019/box3/a_00.png", "2020/a_00.png", "b_00.png"] {
            for folder in ["restored_faces", "cropped_faces", "cmp"] {
                #expect(FileManager.default.fileExists(atPath: dir.path + "/out/\(folder)/" + f), "\(folder)/\(f)")
            }
        }
        try FileManager.default.removeItem(atPath: dir.path + "/out/restored_faces/2020/a_00.png")
        let second = try run(args + ["--skip-existing"])
        #expect(second.status == 0 && second.stdout.contains("restored 1 face") && second.stdout.contains("skipped 2 inputs"), "\(second.stdout)")
        let statuses = try reportLines(dir.path + "/r.jsonl").map { "\($0.path.dropFirst(dir.path.count + 4)) \($0.status.rawValue)" }
        // Each run's lines come in the order inputs finish (photos run side by side).
        #expect(statuses.count == 6)
        #expect(Set(statuses.prefix(3)) == ["2019/box3/a.png done", "2020/a.png done", "b.png done"])
        #expect(Set(statuses.dropFirst(3)) == ["2019/box3/a.png skipped", "2020/a.png done", "b.png skipped"])
        // A listing on standard input, relative to the current folder, or absolute.
        let piped = try run(["restore", "--list", "-", "-o", dir.path + "/piped", "--aligned", "--model-path", model], stdin: "# one\n\(face)\n")
        #expect(piped.status == 0 && FileManager.default.fileExists(atPath: dir.path + "/piped/restored_faces/face_00.png"), "\(piped.stderr)")
    }

    /// Photos side by side (`--jobs 3`, one thread each) write the same bytes as one at a time on
    /// every thread, and the summary names the failures in listing order.
    @Test func photosSideBySideWriteTheSameBytes() throws {
        let dir = try temporaryFolder("jobs")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(atPath: dir.path + "/in", withIntermediateDirectories: true)
        let base = try ImageIO.read(path: face).image
        for k in 0..<6 {   // distinct inputs: the face shifted by k pixels, every other one mirrored
            var px = base.pixels
            for y in 0..<base.height {
                for x in 0..<base.width {
                    let sx = min(max(k % 2 == 0 ? x + k : base.width - 1 - x - k, 0), base.width - 1)
                    for c in 0..<3 { px[(y * base.width + x) * 3 + c] = base.pixels[(y * base.width + sx) * 3 + c] }
                }
            }
            try ImageIO.write(PixelImage(width: base.width, height: base.height, channels: 3, pixels: px), to: dir.path + "/in/face\(k).png")
        }
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: dir.path + "/in/broken1.png"))
        try Data("still not one".utf8).write(to: URL(fileURLWithPath: dir.path + "/in/broken2.png"))
        var stderr: [String] = []
        for jobs in ["1", "3"] {
            let r = try run(["restore", "-i", dir.path + "/in", "-o", dir.path + "/out" + jobs, "--aligned", "--model-path", model,
                             "--threads", "3", "--jobs", jobs])
            #expect(r.status == 1, "\(r.stderr)")
            stderr.append(r.stderr)
        }
        for folder in ["restored_faces", "cropped_faces", "cmp"] {
            let names = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/out1/" + folder).sorted()
            #expect(names.count == 6, "\(folder): \(names)")
            #expect(names == (try FileManager.default.contentsOfDirectory(atPath: dir.path + "/out3/" + folder).sorted()))
            for name in names {
                let a = try Data(contentsOf: URL(fileURLWithPath: dir.path + "/out1/\(folder)/" + name))
                let b = try Data(contentsOf: URL(fileURLWithPath: dir.path + "/out3/\(folder)/" + name))
                #expect(a == b, "\(folder)/\(name) differs between --jobs 1 and --jobs 3")
            }
        }
        for text in stderr {
            let failed = text.components(separatedBy: "failed:\n").last ?? ""
            let one = failed.range(of: "broken1.png"), two = failed.range(of: "broken2.png")
            #expect(one != nil && two != nil && one!.lowerBound < two!.lowerBound, "failures in listing order: \(text)")
        }
    }

    @Test func batchThatCannotRunExitsTwo() throws {
        let dir = try temporaryFolder("exit2")
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = ["restore", "-o", dir.path, "--aligned", "--model-path", model]
        let cases: [([String], [String: String], String)] = [
            (base + ["-i", dir.path + "/nope"], [:], "nope: no such file or folder"),
            (base + ["--list", dir.path + "/nope.txt"], [:], "nope.txt: no such file or folder"),
            (base + ["-i", face, "--shard", "3/3"], [:], "shard 3 of 3 does not exist"),
            (base + ["-i", face, "--shard", "auto"], ["JOB_COMPLETION_INDEX": "1"], "JOB_COMPLETIONS is not"),
            (base, [:], "-i/--input or --list"),
            (base + ["-i", face, "--threads", "0"], [:], "--threads must be between"),
            (["restore", "-i", face, "--aligned", "--model-path", dir.path + "/missing.pth"], [:], "missing.pth"),
            (base + ["-i", face, "--report", dir.path + "/no/such/r.jsonl"], [:], "r.jsonl: cannot open the report"),
        ]
        for (args, env, message) in cases {
            let r = try run(args, environment: env)
            #expect(r.status == 2 && r.stderr.contains(message), "\(args): \(r.status) \(r.stderr)")
        }
        let report = try run(["report", dir.path + "/nope.jsonl"])
        #expect(report.status == 2 && report.stderr.contains("nope.jsonl: cannot read the report"))
        let help = try run(["restore", "--help"])
        #expect(help.stdout.contains("Exit status: 0 when every input"))
    }
}
