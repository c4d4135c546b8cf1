// `facerestore serve`: the web page and its REST API on Hummingbird, on the FaceRestore library.
// One process loads the models once; a fixed number of workers share them; uploads go to disk as
// they arrive and are decoded by the workers, never by the tasks that answer requests.

import FaceRestore
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// A FaceRestore web server: build it (which loads the default models), then `run()` it.
public struct FaceRestoreServer: Sendable {
    let state: ServerState

    /// Loads the default models and prepares the data folder. Throws what a restore would (a
    /// missing detector, a damaged model) before anything listens.
    public init(_ configuration: ServerConfiguration, logger: Logger = Logger(label: "facerestore.serve")) throws {
        state = try ServerState(configuration: configuration, logger: logger)
    }

    public var configuration: ServerConfiguration { state.configuration }
    /// The model that restores faces when a job names none, and what loading it found.
    public var defaultRestorer: Restorer { state.defaultRestorer }
    /// Where jobs keep their files.
    public var dataFolder: String { state.dataFolder.path }

    /// The router with every route (for tests through Hummingbird's test client).
    func router() -> Router<Context> {
        let router = Router(context: Context.self)
        state.routes(router)
        return router
    }

    /// The application; with `workers`, the job workers run as one of its services (tests).
    public func application(includingWorkers: Bool = true, onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in })
        -> some ApplicationProtocol {
        Application(router: router(),
                    configuration: .init(address: .hostname(state.configuration.host, port: state.configuration.port),
                                         serverName: "FaceRestore/\(faceRestoreVersion)"),
                    services: includingWorkers ? [JobRunner(server: state)] : [],
                    onServerRunning: onServerRunning,
                    logger: state.logger)
    }

    /// Serves until SIGINT or SIGTERM. On either, the workers stop first: running jobs finish and
    /// write their results, queued ones are marked failed; then the HTTP server closes.
    /// `onListening` gets the port once the server accepts connections.
    public func run(onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let port = state.configuration.port
        let app = application(includingWorkers: false) { channel in onListening(channel.localAddress?.port ?? port) }
        // A service group shuts its services down in reverse order: the workers before the server.
        let group = ServiceGroup(configuration: .init(services: [app, JobRunner(server: state)],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: state.logger))
        try await group.run()
    }
}
