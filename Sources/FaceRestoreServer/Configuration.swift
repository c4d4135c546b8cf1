// What `facerestore serve` is told: where to listen, which models, the limits that keep one
// server's memory and disk bounded, and where uploads go.

import FaceRestore
import Foundation

/// The settings of one server. Defaults are the CLI's.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// The default face model and everything around it (detector, parser, background tile,
    /// threads per job are set from `workers`).
    public var restorer = Restorer.Configuration()
    public var store = ModelStore()
    /// Largest request body.
    public var maxUploadBytes = 50 << 20
    /// Largest input image, checked from its header before it is decoded.
    public var maxPixels = 50_000_000
    /// Longest video upload, in seconds (restored at about a frame a second on 2 cores).
    public var maxVideoSeconds = 60.0
    /// Largest output (input pixels × upscale²), checked before a job is queued.
    public var maxOutputPixels = 200_000_000
    /// Jobs that run at once, sharing the loaded models; a job gets the cores divided by the jobs
    /// running when it starts (`restorer.threads`, when set, fixes it).
    public var workers = 1
    /// Jobs waiting beyond those running; more are answered 503 with Retry-After.
    public var queueCapacity = 32
    /// Images in one upload request.
    public var maxImagesPerRequest = 32
    /// Where jobs keep their files; nil: a new temporary folder, removed at shutdown.
    public var dataDirectory: String?
    /// Finished jobs (and their files) are removed this long after they end.
    public var jobLifetime: Duration = .seconds(3600)
    /// Memory kept for re-blending finished jobs without running a network; the least recently
    /// used job is dropped beyond it (a re-blend of a dropped job runs its networks again).
    public var reblendCacheBytes = 1 << 30
    /// Face models kept loaded at once when clients pick among several.
    public var maxLoadedModels = 2

    public init() {}

    /// The limits checked from an upload's header.
    var imageLimits: ImageLimits {
        var l = restorer.limits
        l.maxPixels = min(l.maxPixels, maxPixels)
        return l
    }

    /// Whether `host` is reachable only from this machine.
    public var isLoopback: Bool {
        ["127.0.0.1", "::1", "localhost"].contains(host) || host.hasPrefix("127.")
    }
}
