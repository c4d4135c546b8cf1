// Temporal stability for video: faces tracked from frame to frame (box overlap, then landmark
// distance), their five landmarks smoothed by a one-euro filter whose lag is bounded, and tracks
// reset at scene cuts. The restorer then aligns each face with its smoothed landmarks, so the
// crop does not jitter with the detector's frame-to-frame noise; the StyleGAN noise is a pure
// function of the checkpoint or the seed, so a tracked face gets the same noise in every frame.

import FaceRestoreImaging
import FaceRestoreModels
import Foundation

/// The one-euro filter (Casiez et al. 2012) on one value: a low-pass whose cutoff rises with the
/// value's speed, so a still value is smoothed hard and a moving one follows with little lag.
/// `maxLag` bounds how far the output may trail the input.
public struct OneEuroFilter: Sendable, Equatable {
    /// Cutoff (Hz) at rest.
    public var minCutoff: Double
    /// Cutoff increase per unit of speed (units per second).
    public var beta: Double
    /// Cutoff (Hz) of the speed estimate.
    public var derivativeCutoff: Double
    /// The largest distance the output may trail the input (same units as the value).
    public var maxLag: Double
    private var value: Double?
    private var speed = 0.0

    public init(minCutoff: Double, beta: Double, derivativeCutoff: Double = 1, maxLag: Double = .infinity) {
        self.minCutoff = minCutoff
        self.beta = beta
        self.derivativeCutoff = derivativeCutoff
        self.maxLag = maxLag
    }

    static func alpha(cutoff: Double, interval: Double) -> Double {
        let tau = 1 / (2 * Double.pi * cutoff)
        return 1 / (1 + tau / interval)
    }

    /// The filtered value of `x`, `interval` seconds after the previous one.
    public mutating func filter(_ x: Double, interval: Double) -> Double {
        guard let previous = value, interval > 0, x.isFinite else {
            value = x.isFinite ? x : value
            return value ?? x
        }
        let rawSpeed = (x - previous) / interval
        speed += Self.alpha(cutoff: derivativeCutoff, interval: interval) * (rawSpeed - speed)
        let cutoff = minCutoff + beta * abs(speed)
        var out = previous + Self.alpha(cutoff: cutoff, interval: interval) * (x - previous)
        if out - x > maxLag { out = x + maxLag } else if x - out > maxLag { out = x - maxLag }
        value = out
        return out
    }
}

/// Faces followed across a video's frames.
public struct FaceTracker: Sendable {
    /// How tracks are matched and smoothed.
    public struct Settings: Sendable, Equatable {
        /// Smallest box overlap (intersection over union) that continues a track.
        public var minOverlap = 0.3
        /// Largest mean landmark distance, in eye distances, that continues a track without overlap.
        public var maxLandmarkDistance = 0.5
        /// One-euro cutoff at rest (Hz).
        public var minCutoff = 0.3
        /// Cutoff increase per eye distance per second of landmark speed.
        public var beta = 2.0
        /// The most a smoothed landmark may trail the detected one, in eye distances.
        public var maxLag = 0.12
        /// Weight of the previous frames' paste mask in a track's mask (an exponential average in
        /// the face's own frame; 0 uses each frame's own mask).
        public var maskMemory = 0.6
        /// Frames a track survives without a matching face.
        public var maxMissed = 2
        /// Mean absolute difference (gray levels) of consecutive 64×36 thumbnails above which the
        /// frame starts a new scene and every track is dropped.
        public var sceneCut = 30.0

        public init() {}
    }

    struct Track: Sendable {
        var id: Int
        var box: [Float]
        var landmarks: [Float]
        var filters: [OneEuroFilter]
        var missed = 0
    }

    public let settings: Settings
    /// Seconds between frames.
    public let interval: Double
    private var tracks: [Track] = []
    private var nextID = 0
    private var thumbnail: [Float]?
    /// Each track's averaged paste mask, by track id.
    private var masks: [Int: [Double]] = [:]
    /// The track of each face `smooth` returned last, by index.
    public private(set) var lastTrackIDs: [Int] = []
    /// Scene cuts seen so far.
    public private(set) var sceneCuts = 0

    public init(frameRate: Double, settings: Settings = Settings()) {
        self.settings = settings
        self.interval = frameRate > 0 && frameRate.isFinite ? 1 / frameRate : 1.0 / 25
    }

    /// Drops every track when `frame` differs from the previous one as a scene cut does.
    public mutating func observe(frame: PixelImage) {
        let thumb = Self.thumbnail(frame)
        if let previous = thumbnail, previous.count == thumb.count, !thumb.isEmpty {
            var sum = 0.0
            for i in thumb.indices { sum += Double(abs(thumb[i] - previous[i])) }
            if sum / Double(thumb.count) > settings.sceneCut {
                tracks.removeAll()
                masks.removeAll()
                sceneCuts += 1
            }
        }
        thumbnail = thumb
    }

    /// The faces of one frame with their landmarks replaced by their track's smoothed ones (a new
    /// face starts a track at its detected landmarks). Call once per frame, in order.
    public mutating func smooth(_ faces: [DetectedFace]) -> [DetectedFace] {
        var out = faces
        var ids = [Int](repeating: -1, count: faces.count)
        var taken = Set<Int>()
        // Pairs by best score first: overlap, else closeness of the landmarks.
        var pairs: [(score: Double, track: Int, face: Int)] = []
        for (t, track) in tracks.enumerated() {
            for (f, face) in faces.enumerated() where face.landmarks.count == 10 && face.box.count == 4 {
                let iou = Self.overlap(track.box, face.box)
                let scale = max(Self.eyeDistance(track.landmarks), 1)
                let distance = Self.meanDistance(track.landmarks, face.landmarks) / scale
                if iou >= settings.minOverlap {
                    pairs.append((1 + iou, t, f))
                } else if distance <= settings.maxLandmarkDistance {
                    pairs.append((1 - distance, t, f))
                }
            }
        }
        pairs.sort { ($0.score, -$0.track, -$0.face) > ($1.score, -$1.track, -$1.face) }
        var matchedTracks = Set<Int>()
        for p in pairs where !matchedTracks.contains(p.track) && !taken.contains(p.face) {
            matchedTracks.insert(p.track)
            taken.insert(p.face)
            var track = tracks[p.track]
            let face = faces[p.face]
            let scale = max(Self.eyeDistance(face.landmarks), 1)
            var smoothed = face.landmarks
            for k in 0..<10 {
                track.filters[k].maxLag = settings.maxLag * scale
                track.filters[k].beta = settings.beta / scale
                smoothed[k] = Float(track.filters[k].filter(Double(face.landmarks[k]), interval: interval))
            }
            track.box = face.box
            track.landmarks = smoothed
            track.missed = 0
            tracks[p.track] = track
            out[p.face].landmarks = smoothed
            ids[p.face] = track.id
        }
        for t in tracks.indices where !matchedTracks.contains(t) { tracks[t].missed += 1 }
        tracks.removeAll { $0.missed > settings.maxMissed }
        let alive = Set(tracks.map(\.id))
        masks = masks.filter { alive.contains($0.key) }
        for (f, face) in faces.enumerated() where !taken.contains(f) && face.landmarks.count == 10 && face.box.count == 4 {
            let scale = max(Self.eyeDistance(face.landmarks), 1)
            var filters = [OneEuroFilter](repeating: OneEuroFilter(minCutoff: settings.minCutoff, beta: settings.beta / scale,
                                                                   maxLag: settings.maxLag * scale), count: 10)
            for k in 0..<10 { _ = filters[k].filter(Double(face.landmarks[k]), interval: interval) }
            tracks.append(Track(id: nextID, box: face.box, landmarks: face.landmarks, filters: filters))
            ids[f] = nextID
            nextID += 1
        }
        lastTrackIDs = ids
        return out
    }

    /// Face `index` of the last `smooth` call's paste mask averaged with its track's earlier
    /// masks (`maskMemory`); the average is kept for the next frame.
    public mutating func smoothMask(face index: Int, values: inout [Double]) {
        guard lastTrackIDs.indices.contains(index), lastTrackIDs[index] >= 0 else { return }
        let id = lastTrackIDs[index]
        let w = min(max(settings.maskMemory, 0), 1)
        if let previous = masks[id], previous.count == values.count {
            for i in values.indices { values[i] = w * previous[i] + (1 - w) * values[i] }
        }
        masks[id] = values
    }

    /// Tracks alive now.
    public var trackCount: Int { tracks.count }

    static func overlap(_ a: [Float], _ b: [Float]) -> Double {
        guard a.count == 4, b.count == 4 else { return 0 }
        let iw = max(0, Double(min(a[2], b[2]) - max(a[0], b[0]))), ih = max(0, Double(min(a[3], b[3]) - max(a[1], b[1])))
        let inter = iw * ih
        let areaA = max(0, Double(a[2] - a[0])) * max(0, Double(a[3] - a[1]))
        let areaB = max(0, Double(b[2] - b[0])) * max(0, Double(b[3] - b[1]))
        let union = areaA + areaB - inter
        return union > 0 && union.isFinite ? inter / union : 0
    }

    static func eyeDistance(_ l: [Float]) -> Double {
        guard l.count >= 4 else { return 0 }
        let dx = Double(l[0] - l[2]), dy = Double(l[1] - l[3])
        let d = (dx * dx + dy * dy).squareRoot()
        return d.isFinite ? d : 0
    }

    static func meanDistance(_ a: [Float], _ b: [Float]) -> Double {
        guard a.count == 10, b.count == 10 else { return .infinity }
        var sum = 0.0
        for k in 0..<5 {
            let dx = Double(a[2 * k] - b[2 * k]), dy = Double(a[2 * k + 1] - b[2 * k + 1])
            sum += (dx * dx + dy * dy).squareRoot()
        }
        return sum.isFinite ? sum / 5 : .infinity
    }

    /// The frame's gray levels averaged over a 64×36 grid.
    static func thumbnail(_ image: PixelImage) -> [Float] {
        let (gw, gh) = (64, 36)
        guard image.width > 0, image.height > 0, image.channels >= 3 else { return [] }
        var sums = [Float](repeating: 0, count: gw * gh), counts = [Float](repeating: 0, count: gw * gh)
        let step = max(1, min(image.width, image.height) / 144)
        var y = 0
        while y < image.height {
            let gy = y * gh / image.height
            var x = 0
            while x < image.width {
                let o = (y * image.width + x) * image.channels
                let gray = 0.114 * Float(image.pixels[o]) + 0.587 * Float(image.pixels[o + 1]) + 0.299 * Float(image.pixels[o + 2])
                let g = gy * gw + x * gw / image.width
                sums[g] += gray
                counts[g] += 1
                x += step
            }
            y += step
        }
        return zip(sums, counts).map { $1 > 0 ? $0 / $1 : 0 }
    }
}
