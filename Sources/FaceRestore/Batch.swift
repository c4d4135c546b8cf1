// Batches that survive being killed and split across machines: the inputs of a file, a folder
// (optionally with its subfolders, mirrored in the outputs) or a listing; output names that stay
// unique; a stable share of the inputs per worker (`Shard`); skipping inputs a finished run already
// restored; and the loop that restores each input, writes its outputs atomically and appends one
// report line per input (`BatchReportWriter`, merged by `BatchReportMerge`).

import FaceRestoreEngine
import FaceRestoreImaging
import FaceRestorePipeline
import Foundation
import Synchronization

// MARK: inputs

/// One input of a batch.
public struct BatchInput: Sendable, Equatable {
    /// The file to read.
    public var path: String
    /// The input as listed: the line of a listing, or the folder joined with the file's path
    /// inside it. Reports name inputs by this.
    public var listed: String
    /// What decides the input's shard: its path relative to the folder, or the line as written
    /// in a listing.
    public var key: String
    /// The subfolder mirrored in every output folder ("" for none).
    public var subfolder: String
    /// The base of the output names, with the subfolder (`2019/box3/scan_001`); unique in the
    /// batch. Set by `BatchListing.named`.
    public var name: String

    public init(path: String, listed: String, key: String, subfolder: String = "") {
        self.path = path
        self.listed = listed
        self.key = key
        self.subfolder = subfolder
        self.name = subfolder.isEmpty ? Restorer.baseName(path) : subfolder + "/" + Restorer.baseName(path)
    }
}

/// Why a batch's inputs cannot be listed or its report written. One line, naming the file.
public enum BatchError: Error, CustomStringConvertible, Equatable {
    case noSuchInput(String)
    case cannotRead(String, reason: String)
    case noFiles(String)
    case badListLine(list: String, line: Int, entry: String, reason: String)
    case badShard(String)
    case report(String, reason: String)

    public var description: String {
        switch self {
        case .noSuchInput(let path): return "\(path): no such file or folder"
        case let .cannotRead(path, reason): return "\(path): cannot read (\(reason))"
        case .noFiles(let path): return "\(path): no input files"
        case let .badListLine(list, line, entry, reason): return "\(list):\(line): \(entry): \(reason)"
        case .badShard(let reason): return reason
        case let .report(path, reason): return "\(path): \(reason)"
        }
    }
}

/// Listing a batch's inputs.
///
/// - A file is one input, keyed by its path as given.
/// - A folder gives its regular files in name order, hidden files skipped, keyed by their name;
///   `recursive` walks its subfolders too (hidden and symbolically linked folders skipped, so a
///   link cannot loop), keyed by the path inside the folder, and mirrors each subfolder in the
///   outputs.
/// - A listing has one path per line; blank lines and lines starting with `#` are skipped and
///   surrounding spaces trimmed. Relative paths are resolved against the listing's folder (the
///   current folder for standard input), so a listing can move with the files it names. Each
///   input is keyed by its line as written. With `recursive`, the folder part of each line is
///   mirrored in the outputs; such lines must then be relative and must not climb out with `..`.
public enum BatchListing {
    /// The inputs of a file or a folder.
    public static func path(_ input: String, recursive: Bool = false) throws -> [BatchInput] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: input, isDirectory: &isDir) else { throw BatchError.noSuchInput(input) }
        guard isDir.boolValue else { return named([BatchInput(path: input, listed: input, key: input)]) }
        var inputs: [BatchInput] = []
        try walk(input, relative: "", recursive: recursive, into: &inputs)
        if inputs.isEmpty { throw BatchError.noFiles(input) }
        return named(inputs)
    }

    private static func walk(_ root: String, relative: String, recursive: Bool, into inputs: inout [BatchInput]) throws {
        let folder = relative.isEmpty ? root : root + "/" + relative
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: folder) } catch {
            throw BatchError.cannotRead(folder, reason: "cannot list the folder")
        }
        for name in names.sorted() where !name.hasPrefix(".") {
            let inner = relative.isEmpty ? name : relative + "/" + name
            let path = root + "/" + inner
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { continue }
            if isDir.boolValue {
                let type = (try? FileManager.default.attributesOfItem(atPath: path))?[.type] as? FileAttributeType
                guard recursive, type == .typeDirectory else { continue }
                try walk(root, relative: inner, recursive: recursive, into: &inputs)
            } else {
                inputs.append(BatchInput(path: path, listed: path, key: inner, subfolder: relative))
            }
        }
    }

    /// The inputs of the listing at `path`.
    public static func list(at path: String, recursive: Bool = false) throws -> [BatchInput] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            var isDir: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDir)
            throw exists ? BatchError.cannotRead(path, reason: isDir.boolValue ? "a folder, not a listing" : "\(error.localizedDescription)")
                         : BatchError.noSuchInput(path)
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try list(data, name: path, base: base, recursive: recursive)
    }

    /// The inputs of a listing's bytes; `name` names it in errors, relative lines are resolved
    /// against the folder `base`.
    public static func list(_ data: Data, name: String, base: String, recursive: Bool = false) throws -> [BatchInput] {
        guard let text = String(data: data, encoding: .utf8) else { throw BatchError.cannotRead(name, reason: "not UTF-8 text") }
        var inputs: [BatchInput] = []
        for (n, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let entry = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if entry.isEmpty || entry.hasPrefix("#") { continue }
            let path = entry.hasPrefix("/") ? entry : (base.isEmpty ? entry : base + "/" + entry)
            var subfolder = ""
            if recursive {
                let parts = entry.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
                if entry.hasPrefix("/") || parts.contains("..") {
                    throw BatchError.badListLine(list: name, line: n + 1, entry: entry,
                                                 reason: "mirrored output folders need a relative path that stays inside the listing's folder")
                }
                subfolder = parts.dropLast().joined(separator: "/")
            }
            inputs.append(BatchInput(path: path, listed: entry, key: entry, subfolder: subfolder))
        }
        if inputs.isEmpty { throw BatchError.noFiles(name) }
        return named(inputs)
    }

    /// `inputs` with unique output names: per subfolder, the file name without extension, and
    /// for a second file with the same base (`a.jpg`, `a.png`) the extension appended (`a_png`),
    /// then a counter, so that no output overwrites another. Names depend on the whole listing,
    /// never on a shard of it, so every worker names an input alike.
    public static func named(_ inputs: [BatchInput]) -> [BatchInput] {
        var used = Set<String>()
        return inputs.map { input in
            var out = input
            let prefix = input.subfolder.isEmpty ? "" : input.subfolder + "/"
            let base = prefix + Restorer.baseName(input.path)
            var name = base
            if used.contains(name) {
                name = base + "_" + URL(fileURLWithPath: input.path).pathExtension.lowercased()
                var k = 2
                while used.contains(name) { name = base + "_\(k)"; k += 1 }
            }
            used.insert(name)
            out.name = name
            return out
        }
    }
}

// MARK: shards

/// A worker's share of a batch: the inputs whose key hashes (FNV-1a 64 of its UTF-8 bytes) to
/// `index` modulo `count`. The hash is fixed, so every worker on every machine agrees.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1 else { throw BatchError.badShard("a batch splits into 1 or more shards, not \(count)") }
        guard (0..<count).contains(index) else {
            throw BatchError.badShard("shard \(index) of \(count) does not exist (shards are numbered 0 to \(count - 1))")
        }
        self.index = index
        self.count = count
    }

    /// `i/N`, e.g. `0/3`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else {
            throw BatchError.badShard("a shard is written i/N (for example 0/3), not '\(text)'")
        }
        try self.init(index: i, count: n)
    }

    /// The shard of a Kubernetes Indexed Job (`JOB_COMPLETION_INDEX`, and `JOB_COMPLETIONS`,
    /// which the manifest sets to its completions) or, else, of a Slurm job array
    /// (`SLURM_ARRAY_TASK_ID` minus `SLURM_ARRAY_TASK_MIN`, divided by `SLURM_ARRAY_TASK_STEP`,
    /// of `SLURM_ARRAY_TASK_COUNT`).
    public static func fromEnvironment(_ env: [String: String]) throws -> Shard {
        func number(_ key: String) throws -> Int? {
            guard let raw = env[key] else { return nil }
            guard let n = Int(raw.trimmingCharacters(in: .whitespaces)), n >= 0 else {
                throw BatchError.badShard("\(key) is '\(raw)', not a whole number")
            }
            return n
        }
        if env["JOB_COMPLETION_INDEX"] != nil {
            guard let index = try number("JOB_COMPLETION_INDEX"), let count = try number("JOB_COMPLETIONS") else {
                throw BatchError.badShard("JOB_COMPLETION_INDEX is set but JOB_COMPLETIONS is not: set it to the Job's completions in the manifest")
            }
            return try Shard(index: index, count: count)
        }
        if env["SLURM_ARRAY_TASK_ID"] != nil {
            guard let id = try number("SLURM_ARRAY_TASK_ID"), let count = try number("SLURM_ARRAY_TASK_COUNT") else {
                throw BatchError.badShard("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not")
            }
            let min = try number("SLURM_ARRAY_TASK_MIN") ?? 0
            let step = try number("SLURM_ARRAY_TASK_STEP") ?? 1
            guard step >= 1, id >= min, (id - min) % step == 0 else {
                throw BatchError.badShard("SLURM_ARRAY_TASK_ID \(id) is not on the array's range (min \(min), step \(step)): use an array of consecutive IDs such as --array=0-\(Swift.max(count - 1, 0))")
            }
            return try Shard(index: (id - min) / step, count: count)
        }
        throw BatchError.badShard("no shard in the environment: neither JOB_COMPLETION_INDEX and JOB_COMPLETIONS (a Kubernetes Indexed Job) nor SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT (a Slurm job array) are set")
    }

    /// The hash that places `key`.
    public static func hash(_ key: String) -> UInt64 { fnv1a64(key) }

    public func contains(_ key: String) -> Bool { Int(Self.hash(key) % UInt64(count)) == index }

    public func contains(_ input: BatchInput) -> Bool { contains(input.key) }

    public var description: String { "\(index)/\(count)" }
}

// MARK: outcomes and report lines

/// What became of one input.
public enum BatchStatus: String, Sendable, Codable, CaseIterable {
    /// Restored and written.
    case done
    /// Its restored image was already there (a finished earlier run): not run again.
    case skipped
    /// The image has no face the model keeps: it was upscaled and written.
    case noFaces = "no_faces"
    /// It could not be read, restored or written.
    case failed
}

/// One report line: what became of one input, in which worker.
public struct BatchRecord: Sendable, Equatable, Codable {
    /// The input as listed.
    public var path: String
    public var status: BatchStatus
    public var faces: Int?
    public var model: String?
    /// Seconds per stage.
    public var timings: [String: Double]?
    /// Files written (under the output folder, as paths).
    public var outputs: [String]?
    /// The one-line error of a failed input.
    public var error: String?
    /// The worker's shard, `i/N`.
    public var shard: String?
    public var host: String?
    public var pid: Int32?
    /// UTC, ISO 8601 with milliseconds.
    public var time: String?

    public init(path: String, status: BatchStatus, faces: Int? = nil, model: String? = nil, timings: [String: Double]? = nil,
                outputs: [String]? = nil, error: String? = nil, shard: String? = nil, host: String? = nil, pid: Int32? = nil,
                time: String? = nil) {
        self.path = path
        self.status = status
        self.faces = faces
        self.model = model
        self.timings = timings
        self.outputs = outputs
        self.error = error
        self.shard = shard
        self.host = host
        self.pid = pid
        self.time = time
    }

    /// The JSON object on one line (no newline), keys in a fixed order.
    public var jsonLine: String {
        var fields = ["\"path\":" + jsonString(path), "\"status\":" + jsonString(status.rawValue)]
        if let faces { fields.append("\"faces\":\(faces)") }
        if let model { fields.append("\"model\":" + jsonString(model)) }
        if let timings {
            let order = RestoreTimings.stageNames
            let keys = timings.keys.sorted { (order.firstIndex(of: $0) ?? order.count, $0) < (order.firstIndex(of: $1) ?? order.count, $1) }
            fields.append("\"timings\":{" + keys.map { jsonString($0) + ":" + jsonNumber(timings[$0] ?? 0) }.joined(separator: ",") + "}")
        }
        if let outputs { fields.append("\"outputs\":[" + outputs.map(jsonString).joined(separator: ",") + "]") }
        if let error { fields.append("\"error\":" + jsonString(error)) }
        if let shard { fields.append("\"shard\":" + jsonString(shard)) }
        if let host { fields.append("\"host\":" + jsonString(host)) }
        if let pid { fields.append("\"pid\":\(pid)") }
        if let time { fields.append("\"time\":" + jsonString(time)) }
        return "{" + fields.joined(separator: ",") + "}"
    }

    /// The current time as report lines write it: `2025-01-31T12:00:00.123Z`.
    public static func timestamp(_ date: Date = Date()) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: date)
    }
}

func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
        default: out.unicodeScalars.append(u)
        }
    }
    return out + "\""
}

func jsonNumber(_ x: Double) -> String { x.isFinite ? String(format: "%.4f", x) : "0" }

extension RestoreTimings {
    /// Stage names as reports write them, in pipeline order.
    public static let stageNames = ["decode", "detect", "align", "network", "background", "face_upsampling", "masks", "paste", "encode"]

    /// Seconds per stage, by the names of `stageNames`.
    public var byStage: [String: Double] {
        let values = [decode, detect, align, network, background, faceUpsampling, masks, paste, encode]
        return Dictionary(uniqueKeysWithValues: zip(Self.stageNames, values))
    }
}

/// Appends report lines to a file that several processes (on this machine) may share: opened with
/// O_APPEND and each line written by one write(2), so lines never interleave and a killed
/// worker's report is valid up to its last line. Lines are not fsynced: a process killed any way
/// loses none (they are in the kernel), a machine that loses power may lose the last few, which
/// a rerun reports again as skipped.
public final class BatchReportWriter: Sendable {
    public let path: String
    private let fd: Int32

    public init(path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BatchError.report(path, reason: "cannot open the report (\(String(cString: strerror(errno))))") }
        self.path = path
        self.fd = fd
    }

    deinit { close(fd) }

    /// Appends `record` as one line.
    public func append(_ record: BatchRecord) throws {
        let bytes = Array((record.jsonLine + "\n").utf8)
        let n = bytes.withUnsafeBytes { raw -> Int in
            var n: Int
            repeat { n = write(fd, raw.baseAddress, raw.count) } while n < 0 && errno == EINTR
            return n
        }
        guard n == bytes.count else {
            throw BatchError.report(path, reason: n < 0 ? "cannot append to the report (\(String(cString: strerror(errno))))"
                                                        : "the report line was cut short (\(n) of \(bytes.count) bytes; is the disk full?)")
        }
    }
}

// MARK: merging reports

/// The reports of several workers and runs merged into one line per input: its final status.
/// Lines are taken in time order (ties: in the order of the files and lines given). A `done`,
/// `no_faces` or `failed` line wins over a later `skipped` (a rerun found the outputs); a later
/// `done` or `no_faces` wins over an earlier `failed`; a later `failed` never replaces an input's
/// `done`, `no_faces` or `skipped` (its finished outputs are still there: files are replaced
/// atomically or not at all).
public struct BatchReportMerge: Sendable {
    /// One record per input, in the order inputs first appear.
    public var records: [BatchRecord] = []
    /// Lines ignored, one line each (a truncated last line of a killed worker, a line that is not
    /// a report line).
    public var warnings: [String] = []

    public init(records: [BatchRecord] = [], warnings: [String] = []) {
        self.records = records
        self.warnings = warnings
    }

    /// Merges the reports `files` (a name for warnings and the bytes each).
    public static func merge(_ files: [(name: String, data: Data)]) -> BatchReportMerge {
        var merge = BatchReportMerge()
        var lines: [(record: BatchRecord, file: Int, line: Int)] = []
        let decoder = JSONDecoder()
        for (f, file) in files.enumerated() {
            let text = String(decoding: file.data, as: UTF8.self)
            let parts = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
            let complete = text.last?.isNewline ?? true
            for (n, part) in parts.enumerated() {
                let trimmed = part.trimmingCharacters(in: .whitespaces)
                if trimmed.isEmpty { continue }
                if let record = try? decoder.decode(BatchRecord.self, from: Data(trimmed.utf8)) {
                    lines.append((record, f, n))
                } else if !complete, n == parts.count - 1 {
                    merge.warnings.append("\(file.name):\(n + 1): the last line is incomplete (a worker stopped while writing it); ignored")
                } else {
                    merge.warnings.append("\(file.name):\(n + 1): not a report line; ignored")
                }
            }
        }
        // Inputs in the order they first appear in the files as given.
        var order: [String] = [], seen = Set<String>()
        for line in lines where seen.insert(line.record.path).inserted { order.append(line.record.path) }
        lines.sort { ($0.record.time ?? "", $0.file, $0.line) < ($1.record.time ?? "", $1.file, $1.line) }
        var final: [String: BatchRecord] = [:]
        for (record, _, _) in lines {
            guard let old = final[record.path] else { final[record.path] = record; continue }
            switch (old.status, record.status) {
            case (_, .skipped): continue
            case (.done, .failed), (.noFaces, .failed), (.skipped, .failed): continue
            default: final[record.path] = record
            }
        }
        merge.records = order.compactMap { final[$0] }
        return merge
    }

    /// Inputs per status.
    public var counts: [BatchStatus: Int] {
        var c: [BatchStatus: Int] = [:]
        for r in records { c[r.status, default: 0] += 1 }
        return c
    }

    /// The inputs whose final status is `failed`.
    public var failed: [BatchRecord] { records.filter { $0.status == .failed } }
}

// MARK: the batch

/// A batch: the listed inputs named, this worker's share of them, and the loop over them.
public struct Batch: Sendable {
    /// Where and how outputs go, and what to skip.
    public struct Options: Sendable {
        /// The output folder (`restored_imgs/`, `cropped_faces/`, `restored_faces/`, `cmp/` under it).
        public var output: String
        public var outputs: OutputOptions
        /// Skip an input whose restored image exists (see `Batch.restoredImagePath`).
        public var skipExisting: Bool
        /// This worker's share; nil for all inputs.
        public var shard: Shard?
        /// Inputs restored side by side, each on its share of the restorer's threads (memory
        /// holds `jobs` photos at a time); nil: one at a time on every thread. Two photos on one
        /// thread each were no faster than one on two (`scripts/bench_batch.py`, 20 photos,
        /// GFP-GAN v1.4, 2 cores: 0.97×).
        public var jobs: Int?

        public init(output: String, outputs: OutputOptions = OutputOptions(), skipExisting: Bool = false, shard: Shard? = nil,
                    jobs: Int? = nil) {
            self.output = output
            self.outputs = outputs
            self.skipExisting = skipExisting
            self.shard = shard
            self.jobs = jobs
        }
    }

    /// Something that happened to input `index` (of `inputs`).
    public enum Event: Sendable {
        case started(index: Int, input: BatchInput)
        case stage(index: Int, input: BatchInput, RestoreStage)
        case finished(index: Int, Outcome)
    }

    /// What became of one input.
    public struct Outcome: Sendable {
        public var input: BatchInput
        public var status: BatchStatus
        /// The restoration (done and no_faces).
        public var result: RestoreResult?
        /// The one-line error (failed).
        public var error: String?
        /// The error itself (failed), for callers that add advice to some kinds.
        public var failure: (any Error)?
        /// Files written.
        public var outputs: [String] = []
        /// The report line could not be appended (the restoration itself stands).
        public var reportError: String?

        /// Marks the input failed with `error` (its one line naming the file read).
        mutating func fail(_ error: any Error) {
            status = .failed
            failure = error
            self.error = "\(error)".replacingOccurrences(of: "\n", with: " ")
        }
    }

    /// What a run did, in total.
    public struct Summary: Sendable {
        public var counts: [BatchStatus: Int] = [:]
        /// One line per failed input, in order.
        public var failures: [String] = []
        /// Inputs without a face, as listed.
        public var noFace: [String] = []
        public var faces = 0
        public var timings = RestoreTimings()
        /// How many inputs were processed (not skipped).
        public var processed: Int { (counts[.done] ?? 0) + (counts[.noFaces] ?? 0) + (counts[.failed] ?? 0) }
    }

    /// Every listed input, named.
    public let listed: [BatchInput]
    /// This worker's inputs, in listing order.
    public let inputs: [BatchInput]
    public let options: Options

    public init(_ listed: [BatchInput], options: Options) {
        self.listed = listed
        self.options = options
        self.inputs = options.shard.map { shard in listed.filter { shard.contains($0) } } ?? listed
    }

    /// The file whose presence means `input` was restored by a finished run with these output
    /// options: its restored image (the restored face for aligned crops), written after all its
    /// other files. Other outputs are not checked; a run with another `--ext` or suffix names
    /// its restored image differently and does not count.
    public static func restoredImagePath(_ input: BatchInput, aligned: Bool, output: String, options: OutputOptions) -> String {
        let ext = RestoreResult.fileExtension(options.format, sourcePath: input.path, inputFormat: nil)
        return output + "/" + RestoreResult.primaryPath(name: input.name, aligned: aligned, suffix: options.suffix, extension: ext)
    }

    /// The output folders this worker writes into.
    public var outputFolders: [String] {
        let subfolders = Set(inputs.map(\.subfolder)).sorted()
        return ["restored_imgs", "cropped_faces", "restored_faces", "cmp"].flatMap { top in
            subfolders.map { options.output + "/" + top + ($0.isEmpty ? "" : "/" + $0) }
        }
    }

    /// Removes the temporary files killed runs left in this worker's output folders; returns their
    /// paths.
    @discardableResult
    public func removeStaleTemporaryFiles() -> [String] {
        outputFolders.flatMap { folder in FaceRestoreEngine.removeStaleTemporaryFiles(in: folder).map { folder + "/" + $0 } }
    }

    /// The inputs restored at once with `restorer` (see `Options.jobs`).
    public func jobs(for restorer: Restorer) -> Int {
        max(1, min(options.jobs ?? 1, inputs.count))
    }

    /// Files of at most this many pixels are decoded ahead of their turn (`run`'s pipeline); larger
    /// ones when their turn comes, so that a folder of large scans holds one decoded at a time.
    public static let readAheadPixels = 25_000_000

    /// Restores this worker's inputs with `restorer`, writing each one's outputs, appending its
    /// report line to `report` as it finishes and telling `events` (one call at a time, from the
    /// batch's threads). A failed input is recorded and the batch goes on. The summary lists inputs
    /// in listing order. Outputs do not depend on the thread count or the pipeline.
    ///
    /// One photo at a time (the default): a bounded pipeline on three threads: while input i
    /// restores on every thread of `restorer`, input i+1 is read and decoded (up to
    /// `readAheadPixels`) and input i−1's outputs are encoded and written, one of each at a time,
    /// so memory holds at most three photos whatever the folder's size. Several at a time
    /// (`Options.jobs`): each on its share of the threads.
    public func run(restorer: Restorer, options photo: PhotoOptions, report: BatchReportWriter? = nil,
                    events: (Event) -> Void = { _ in }) -> Summary {
        let jobs = jobs(for: restorer)
        let serial = NSLock()   // events one at a time
        let outcomes = withoutActuallyEscaping(events) { events -> [Outcome?] in
            let shared = UncheckedBox(events)
            let tell: @Sendable (Event) -> Void = { event in
                serial.lock()
                defer { serial.unlock() }
                shared.value(event)
            }
            return jobs == 1 ? runPipelined(restorer: restorer, options: photo, report: report, tell: tell)
                : runSideBySide(jobs, restorer: restorer, options: photo, report: report, tell: tell)
        }
        var summary = Summary()
        for outcome in outcomes.compactMap({ $0 }) {
            summary.counts[outcome.status, default: 0] += 1
            if let error = outcome.error { summary.failures.append(error) }
            if outcome.status == .noFaces { summary.noFace.append(outcome.input.listed) }
            if let result = outcome.result {
                summary.faces += result.restoredFaceCount
                summary.timings = summary.timings + result.timings
            }
        }
        return summary
    }

    /// An input before its restoration: skipped, read (decoded), or to be read when its turn comes.
    private enum Prepared: Sendable {
        case skipped
        case read(Result<FileInput, any Error>)
        case later
    }

    /// A value made on another thread and waited for once.
    private final class Pending<T: Sendable>: Sendable {
        private let done = DispatchSemaphore(value: 0)
        private let value = Mutex<T?>(nil)
        init(on queue: DispatchQueue, _ make: @escaping @Sendable () -> T) {
            queue.async { [self] in
                value.withLock { $0 = make() }
                done.signal()
            }
        }
        func wait() -> T {
            done.wait()
            return value.withLock { $0! }
        }
    }

    /// `run` with one photo at a time (see there).
    private func runPipelined(restorer: Restorer, options photo: PhotoOptions, report: BatchReportWriter?,
                              tell: @escaping @Sendable (Event) -> Void) -> [Outcome?] {
        let reading = DispatchQueue(label: "facerestore.batch.read"), writing = DispatchQueue(label: "facerestore.batch.write")
        let outcomes = Mutex([Outcome?](repeating: nil, count: inputs.count))
        let written = DispatchGroup()
        let readAhead = { (i: Int) in Pending(on: reading) { prepare(i, restorer: restorer, options: photo) } }
        var next = inputs.isEmpty ? nil : readAhead(0)
        for i in inputs.indices {
            let prepared = next?.wait() ?? .later
            next = i + 1 < inputs.count ? readAhead(i + 1) : nil
            tell(.started(index: i, input: inputs[i]))
            let outcome = restore(i, prepared, restorer: restorer, options: photo, tell: tell)
            written.wait()   // one write at a time
            writing.async(group: written) {
                let finished = finish(outcome, index: i, restorer: restorer, report: report, tell: tell)
                outcomes.withLock { $0[i] = finished }
            }
            // A scan restored band by band is written band by band: not beside the next one.
            if outcome.result?.streamed != nil { written.wait() }
        }
        written.wait()
        return outcomes.withLock { $0 }
    }

    /// `run` with `jobs` photos side by side (see there).
    private func runSideBySide(_ jobs: Int, restorer: Restorer, options photo: PhotoOptions, report: BatchReportWriter?,
                               tell: @escaping @Sendable (Event) -> Void) -> [Outcome?] {
        let worker = restorer.with(threads: max(1, restorer.context.threads / jobs))
        let state = Mutex((next: 0, outcomes: [Outcome?](repeating: nil, count: inputs.count)))
        DispatchQueue.concurrentPerform(iterations: jobs) { _ in
            while true {
                let i = state.withLock { s -> Int? in
                    guard s.next < inputs.count else { return nil }
                    defer { s.next += 1 }
                    return s.next
                }
                guard let i else { return }
                tell(.started(index: i, input: inputs[i]))
                let outcome = restore(i, prepare(i, restorer: worker, options: photo, readAhead: false), restorer: worker, options: photo,
                                      tell: tell)
                let finished = finish(outcome, index: i, restorer: worker, report: report, tell: tell)
                state.withLock { $0.outcomes[i] = finished }
            }
        }
        return state.withLock { $0.outcomes }
    }

    /// Input `i` skipped (its restored image exists), read when `readAhead` and small enough, or left
    /// for its turn.
    private func prepare(_ i: Int, restorer: Restorer, options photo: PhotoOptions, readAhead: Bool = true) -> Prepared {
        let input = inputs[i]
        if options.skipExisting,
           FileManager.default.fileExists(atPath: Self.restoredImagePath(input, aligned: restorer.isAligned, output: options.output,
                                                                         options: options.outputs)) {
            return .skipped
        }
        guard readAhead, let data = try? ImageIO.contents(path: input.path),
              let header = try? ImageIO.probe(data, path: input.path, limits: restorer.configuration.limits),
              header.width * header.height <= Self.readAheadPixels else { return .later }
        if let budget = restorer.configuration.memoryBudget?.bytes {
            // Room for this file decoded ahead and a finished photo waiting to be written, beside a restoration.
            let e = restorer.memoryEstimate(width: header.width, height: header.height, options: photo)
            guard e.total + e.input + e.background <= budget else { return .later }
        }
        return .read(Result { try restorer.read(path: input.path, data: data, options: photo) })
    }

    /// Input `i` restored (not yet written).
    private func restore(_ i: Int, _ prepared: Prepared, restorer: Restorer, options photo: PhotoOptions,
                         tell: @escaping @Sendable (Event) -> Void) -> Outcome {
        let input = inputs[i]
        var outcome = Outcome(input: input, status: .done)
        let progress = { (stage: RestoreStage) in tell(.stage(index: i, input: input, stage)) }
        do {
            switch prepared {
            case .skipped:
                outcome.status = .skipped
                return outcome
            case .read(let read):
                outcome.result = try restorer.restore(try read.get(), options: photo, progress: progress)
            case .later:
                outcome.result = try restorer.restore(file: input.path, options: photo, progress: progress)
            }
            outcome.result?.name = input.name
        } catch {
            outcome.fail(error)
        }
        return outcome
    }

    /// `outcome` written (done and no_faces), its report line appended and `tell` told.
    private func finish(_ restored: Outcome, index i: Int, restorer: Restorer, report: BatchReportWriter?,
                        tell: (Event) -> Void) -> Outcome {
        var outcome = restored
        if var result = outcome.result {
            var timings = result.timings
            do {
                outcome.outputs = try timings.measure(\.encode) {
                    do { return try result.write(to: options.output, options: options.outputs, threads: restorer.context.threads) } catch {
                        throw RestoreError(path: outcome.input.path, underlying: error)
                    }
                }
                result.timings = timings
                if result.warnings.contains(.noFace) { outcome.status = .noFaces }
                outcome.result = result
            } catch {
                outcome.result = nil
                outcome.fail(error)
            }
        }
        if let report {
            let result = outcome.result
            let record = BatchRecord(
                path: outcome.input.listed, status: outcome.status,
                faces: result?.restoredFaceCount, model: outcome.status == .skipped ? nil : restorer.modelName,
                timings: result?.timings.byStage, outputs: result == nil ? nil : outcome.outputs,
                error: outcome.error,
                shard: options.shard?.description, host: Self.host, pid: getpid(), time: BatchRecord.timestamp())
            do { try report.append(record) } catch { outcome.reportError = "\(error)" }
        }
        tell(.finished(index: i, outcome))
        return outcome
    }

    private static let host = currentHostName()
}

/// A non-Sendable value handed to worker threads that use it one at a time (under a lock).
private final class UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
