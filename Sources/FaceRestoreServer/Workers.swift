// The compute side of the server: the loaded models the workers share, the finished results kept
// for re-blending, and the workers themselves. Networks run on the workers' own threads, never on
// the tasks that answer requests.

import FaceRestore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// A value computed once, by the first caller; later callers wait for it (the lock is held while
/// it is made).
final class Once<T: Sendable>: Sendable {
    private let state = Mutex<Result<T, any Error>?>(nil)

    func value(_ make: () throws -> T) throws -> T {
        try state.withLock { done in
            if let done { return try done.get() }
            let result = Result(catching: make)
            done = result
            return try result.get()
        }
    }
}

/// The restorers the workers share, one per (face model, background) a client asked for; the
/// least recently used beyond `limit` is dropped (jobs holding it finish with it).
final class RestorerPool: Sendable {
    struct Key: Hashable, Sendable {
        var model: String?
        var background: Bool
    }

    private struct Entry {
        let once: Once<Restorer>
        var used: UInt64
    }

    let base: Restorer.Configuration
    let store: ModelStore
    let limit: Int
    private let entries = Mutex<(tick: UInt64, map: [Key: Entry])>((0, [:]))

    init(base: Restorer.Configuration, store: ModelStore, limit: Int) {
        self.base = base
        self.store = store
        self.limit = max(1, limit)
    }

    /// The restorer for `key`, loaded on first use (blocks the calling thread while loading).
    func restorer(_ key: Key) throws -> Restorer {
        let once = entries.withLock { e -> Once<Restorer> in
            e.tick += 1
            if var hit = e.map[key] {
                hit.used = e.tick
                e.map[key] = hit
                return hit.once
            }
            let made = Once<Restorer>()
            e.map[key] = Entry(once: made, used: e.tick)
            while e.map.count > limit, let oldest = e.map.filter({ $0.key != Key(model: nil, background: false) && $0.key != key })
                    .min(by: { $0.value.used < $1.value.used })?.key {
                e.map[oldest] = nil
            }
            return made
        }
        do {
            return try once.value {
                var c = base
                // Results are re-blended from memory: the whole image is kept, never streamed.
                c.streamingPixels = Int.max
                if let model = key.model { c.model = .named(model) }
                if key.background, c.background == nil { c.background = base.generalModel }
                return try Restorer(c, store: store)
            }
        } catch {
            entries.withLock { _ = $0.map.removeValue(forKey: key) }   // a later request tries again
            throw error
        }
    }
}

/// Finished results kept in memory for re-blending, least recently used dropped beyond a budget.
final class ResultCache: Sendable {
    private struct Entry {
        var result: RestoreResult
        let bytes: Int
        var used: UInt64
    }

    let budget: Int
    private let state = Mutex<(tick: UInt64, bytes: Int, map: [JobID: Entry])>((0, 0, [:]))

    init(budget: Int) { self.budget = max(0, budget) }

    /// About how much memory a result holds (8-bit images, float masks).
    static func size(of r: RestoreResult) -> Int {
        var n = r.original.pixels.count + (r.image?.pixels.count ?? 0) + (r.photo?.background.pixels.count ?? 0)
        for f in r.faces { n += f.cropped.pixels.count + f.restored.pixels.count + f.restored.width * f.restored.height * 4 }
        return n
    }

    func put(_ id: JobID, _ result: RestoreResult) {
        let bytes = Self.size(of: result)
        state.withLock { s in
            s.tick += 1
            if let old = s.map.removeValue(forKey: id) { s.bytes -= old.bytes }
            guard bytes <= budget else { return }
            s.map[id] = Entry(result: result, bytes: bytes, used: s.tick)
            s.bytes += bytes
            while s.bytes > budget, let oldest = s.map.min(by: { $0.value.used < $1.value.used })?.key {
                s.bytes -= s.map.removeValue(forKey: oldest)?.bytes ?? 0
            }
        }
    }

    func get(_ id: JobID) -> RestoreResult? {
        state.withLock { s in
            guard var e = s.map[id] else { return nil }
            s.tick += 1
            e.used = s.tick
            s.map[id] = e
            return e.result
        }
    }

    func remove(_ id: JobID) {
        state.withLock { s in s.bytes -= s.map.removeValue(forKey: id)?.bytes ?? 0 }
    }
}

/// Runs `body` on a thread of its own queue and waits for it without holding a task's thread.
func onThread<T: Sendable>(_ queue: DispatchQueue, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { c in
        queue.async { c.resume(with: Result(catching: body)) }
    }
}

/// The workers: each takes the next job, restores it on its own thread and writes its files.
/// On graceful shutdown, queued jobs are marked failed, running ones finish.
struct JobRunner: Service {
    let server: ServerState

    func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                for w in 0..<server.configuration.workers {
                    group.addTask { await work(queue: DispatchQueue(label: "facerestore.worker.\(w)", qos: .userInitiated)) }
                }
                group.addTask { await expire() }
            }
        } onGracefulShutdown: {
            server.logger.info("shutting down: running jobs finish, queued jobs are marked failed")
            server.store.close(reason: "the server shut down before this job started; upload it again")
        }
        server.removeTemporaryData()
    }

    private func work(queue: DispatchQueue) async {
        while let id = await server.store.next() {
            let state = server
            _ = try? await onThread(queue) { state.process(id) }
        }
    }

    /// Removes finished jobs past their lifetime, checking every few seconds (at most half the
    /// lifetime) until shutdown.
    private func expire() async {
        let lifetime = server.configuration.jobLifetime
        let every = min(Duration.seconds(5), max(.milliseconds(20), lifetime / 2))
        var last = ContinuousClock.now
        while !server.store.isClosed {
            try? await Task.sleep(for: min(every, .milliseconds(200)))
            guard ContinuousClock.now - last >= every else { continue }
            last = .now
            for job in server.store.expire(olderThan: lifetime) {
                if let id = JobID(Substring(job.snapshot.id)) { server.cache.remove(id) }
                try? FileManager.default.removeItem(at: job.folder)
                server.logger.debug("expired job", metadata: ["job": "\(job.snapshot.id)"])
            }
        }
    }
}
