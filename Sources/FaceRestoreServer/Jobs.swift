// Jobs: what the API reports about each upload, the bounded queue the workers take them from,
// and the subscribers that get every change (Server-Sent Events). One lock guards it all; the
// workers report progress from their compute threads without hopping through a task.

import FaceRestore
import Foundation
import Synchronization

/// An unguessable job id: 128 random bits from the system's generator, as 32 lowercase hex digits.
/// Only a string of exactly that form is ever turned into a path.
struct JobID: Hashable, Sendable, CustomStringConvertible {
    let value: String

    static func random() -> JobID {
        var g = SystemRandomNumberGenerator()
        let (a, b) = (g.next() as UInt64, g.next() as UInt64)
        return JobID(value: String(format: "%016llx%016llx", a, b))
    }

    /// The id in a request path, if it has the form of one.
    init?(_ text: Substring) {
        guard text.utf8.count == 32, text.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else { return nil }
        value = String(text)
    }

    private init(value: String) { self.value = value }

    var description: String { value }
}

enum JobState: String, Codable, Sendable {
    case queued, running, done, failed
    var isFinal: Bool { self == .done || self == .failed }
}

/// What the client asked for, validated.
struct JobRequest: Sendable, Equatable {
    /// Catalog name of the face model, or nil for the server's default.
    var model: String?
    var weight: Double = 1
    var upscale: Int?
    var background = false
    var onlyCenterFace = false
    /// CodeFormer's fidelity weight; nil: the library's default. Other models ignore it.
    var fidelity: Double?
    /// Gray in, gray out.
    var keepGray = false

    /// The library's options for this request.
    var photoOptions: PhotoOptions {
        PhotoOptions(upscale: upscale, onlyCenterFace: onlyCenterFace, weight: weight, fidelity: fidelity.map(Float.init), keepGray: keepGray)
    }
}

/// One face of a finished job, as the API reports it.
struct FaceReport: Codable, Sendable, Equatable {
    var index: Int
    /// x1, y1, x2, y2 in the input photo's pixels.
    var box: [Float]
    var score: Float
    /// Pasted into the current result.
    var included: Bool
    /// ID-dlib distance of the face as pasted to the person in the input (0 = same embedding),
    /// when the identity model is installed.
    var identity: Double? = nil
    /// This face's own blend weight, when the identity guard lowered it below the job's.
    var weight: Double? = nil
}

/// The job as `GET /api/v1/jobs/{id}` and each event report it.
struct JobSnapshot: Codable, Sendable, Equatable {
    var id: String
    var status: JobState
    var progress: Double
    var stage: String
    var faces: [FaceReport] = []
    var warnings: [String] = []
    var error: String?
    /// The uploaded file's name, for display and download names only.
    var name: String
    var model: String?
    var weight: Double
    /// CodeFormer's fidelity weight the job runs with, once its model is known to take one.
    var fidelity: Double?
    var keepGray: Bool = false
    /// The terms of the model's weights when they restrict use (non-commercial), once it is loaded.
    var license: String?
    var upscale: Int?
    var width: Int?
    var height: Int?
    /// Bumped by every new result (a re-blend), so a client can tell results apart.
    var revision: Int = 0
    /// Seconds from upload to result.
    var seconds: Double?
    /// A video job: its result is a video, shown by the page's player; nothing to re-blend.
    var video: Bool = false
    /// A video's frames restored so far and its frame count, while it runs.
    var frames: Int?
    var totalFrames: Int?
}

/// Refusals the API maps to a status.
enum JobError: Error, Equatable {
    case queueFull(retryAfter: Int)
    case shuttingDown
}

/// The jobs of one server.
final class JobStore: Sendable {
    struct Job {
        var snapshot: JobSnapshot
        var request: JobRequest
        let folder: URL
        let created: ContinuousClock.Instant
        var finished: ContinuousClock.Instant?
        var subscribers: [UUID: AsyncStream<JobSnapshot>.Continuation] = [:]
    }

    private struct State {
        var jobs: [JobID: Job] = [:]
        var queue: [JobID] = []
        var waiting: [CheckedContinuation<JobID?, Never>] = []
        var running = 0
        var closed = false
    }

    private let state = Mutex(State())
    let capacity: Int
    /// Seconds a client should wait before retrying a refused upload.
    let retryAfter: Int

    init(capacity: Int, retryAfter: Int = 5) {
        self.capacity = max(1, capacity)
        self.retryAfter = retryAfter
    }

    /// Queues new jobs, all or none: refused when the queue has no room for all of them.
    func submit(_ jobs: [(JobID, JobRequest, URL, String)]) throws(JobError) {
        let now = ContinuousClock.now
        let wake: [(CheckedContinuation<JobID?, Never>, JobID)] = try state.withLock { (s) throws(JobError) in
            guard !s.closed else { throw JobError.shuttingDown }
            guard s.queue.count + jobs.count <= capacity else { throw JobError.queueFull(retryAfter: retryAfter) }
            for (id, request, folder, name) in jobs {
                let snap = JobSnapshot(id: id.value, status: .queued, progress: 0, stage: "queued", name: name, model: request.model,
                                       weight: request.weight, keepGray: request.keepGray, upscale: request.upscale)
                s.jobs[id] = Job(snapshot: snap, request: request, folder: folder, created: now)
                s.queue.append(id)
            }
            var wake: [(CheckedContinuation<JobID?, Never>, JobID)] = []
            while !s.waiting.isEmpty, !s.queue.isEmpty {
                let id = s.queue.removeFirst()
                s.running += 1
                s.jobs[id]?.snapshot.status = .running
                wake.append((s.waiting.removeFirst(), id))
            }
            return wake
        }
        for (c, id) in wake { c.resume(returning: id) }
    }

    /// The next queued job, now marked running; nil once the store is closed.
    func next() async -> JobID? {
        await withCheckedContinuation { (c: CheckedContinuation<JobID?, Never>) in
            let id: JobID?? = state.withLock { s in
                if s.closed { return .some(nil) }
                if s.queue.isEmpty { s.waiting.append(c); return nil }
                let id = s.queue.removeFirst()
                s.running += 1
                return .some(id)
            }
            if let id { c.resume(returning: id) }
        }
    }

    /// Stops handing out jobs: queued jobs fail with `reason`, idle workers get nil. Running
    /// jobs go on to their end.
    func close(reason: String) {
        let (waiting, failed) = state.withLock { s -> ([CheckedContinuation<JobID?, Never>], [JobID]) in
            s.closed = true
            let w = s.waiting
            s.waiting = []
            let q = s.queue
            s.queue = []
            return (w, q)
        }
        for c in waiting { c.resume(returning: nil) }
        for id in failed { update(id) { $0.status = .failed; $0.error = reason; $0.stage = "failed" } }
    }

    var isClosed: Bool { state.withLock { $0.closed } }

    /// Changes a job's snapshot and tells its subscribers; a final state ends their streams.
    func update(_ id: JobID, _ change: (inout JobSnapshot) -> Void) {
        let (snap, subs, final) = state.withLock { s -> (JobSnapshot?, [AsyncStream<JobSnapshot>.Continuation], Bool) in
            guard var job = s.jobs[id] else { return (nil, [], false) }
            let wasFinal = job.snapshot.status.isFinal
            change(&job.snapshot)
            let final = job.snapshot.status.isFinal
            if final, !wasFinal { job.finished = .now }
            let subs = Array(job.subscribers.values)
            if final { job.subscribers = [:] }
            s.jobs[id] = job
            return (job.snapshot, subs, final)
        }
        guard let snap else { return }
        for c in subs {
            c.yield(snap)
            if final { c.finish() }
        }
    }

    /// Marks a job taken by `next()` as finished (`change` sets done or failed) and frees its
    /// worker slot.
    func finish(_ id: JobID, _ change: (inout JobSnapshot) -> Void) {
        state.withLock { s in if s.running > 0 { s.running -= 1 } }
        update(id, change)
    }

    func snapshot(_ id: JobID) -> JobSnapshot? { state.withLock { $0.jobs[id]?.snapshot } }
    func job(_ id: JobID) -> Job? { state.withLock { $0.jobs[id] } }

    /// The current snapshot, then every change until the job ends (or the store drops it).
    func subscribe(_ id: JobID) -> AsyncStream<JobSnapshot>? {
        let (stream, continuation) = AsyncStream.makeStream(of: JobSnapshot.self, bufferingPolicy: .bufferingNewest(16))
        let key = UUID()
        let current: JobSnapshot? = state.withLock { s in
            guard let job = s.jobs[id] else { return nil }
            if !job.snapshot.status.isFinal { s.jobs[id]?.subscribers[key] = continuation }
            return job.snapshot
        }
        guard let current else { return nil }
        continuation.yield(current)
        if current.status.isFinal { continuation.finish() }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { s in _ = s.jobs[id]?.subscribers.removeValue(forKey: key) }
        }
        return stream
    }

    /// Forgets a job (its folder is the caller's to remove). Refused while it runs.
    func remove(_ id: JobID) -> Job?? {
        let removed: Job?? = state.withLock { s in
            guard let job = s.jobs[id] else { return .some(nil) }
            if job.snapshot.status == .running { return nil }
            s.queue.removeAll { $0 == id }
            s.jobs[id] = nil
            return .some(job)
        }
        if case .some(.some(let job)) = removed {
            for c in job.subscribers.values { c.finish() }
        }
        return removed
    }

    /// Finished jobs older than `age`, removed from the store.
    func expire(olderThan age: Duration) -> [Job] {
        let now = ContinuousClock.now
        return state.withLock { s in
            let old = s.jobs.filter { _, job in job.finished.map { now - $0 > age } ?? false }
            for id in old.keys { s.jobs[id] = nil }
            return Array(old.values)
        }
    }

    /// Queued, running, and all jobs.
    var counts: (queued: Int, running: Int, jobs: Int) {
        state.withLock { s in (s.queue.count, s.running, s.jobs.count) }
    }
}
