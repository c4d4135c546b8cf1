// The HTTP side: `/api/v1` (documented in Page/openapi.json), the page and its files, and the
// mapping of every failure to `{"error": "…"}` with its status.

import FaceRestore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

typealias Context = BasicRequestContext

/// Any error as `{"error": …}`: ours with their status, Hummingbird's (an unknown route, a body
/// too large) with theirs, anything else as 500 with its line logged.
struct JSONErrorMiddleware: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let e as APIError {
            var headers = HTTPFields()
            if let r = e.retryAfter { headers[.retryAfter] = String(r) }
            return jsonResponse(["error": e.message], status: e.status, headers: headers)
        } catch let e as HTTPError {
            if e.status == .notFound, let allowed = Self.allowedMethods(request.uri.path), !allowed.contains(request.method.rawValue) {
                return jsonResponse(["error": "\(request.method) is not allowed here (allowed: \(allowed.joined(separator: ", ")))"],
                                    status: .methodNotAllowed, headers: [.allow: allowed.joined(separator: ", ")])
            }
            let text = e.body ?? (e.status == .notFound ? "no such route: \(request.method) \(request.uri.path)" : e.status.reasonPhrase)
            return jsonResponse(["error": text], status: e.status, headers: e.headers)
        } catch let e as any HTTPResponseError {
            return jsonResponse(["error": "\(e)"], status: e.status)
        } catch {
            context.logger.error("unexpected error", metadata: ["error": "\(error)"])
            return jsonResponse(["error": "internal error: \(error)"], status: .internalServerError)
        }
    }
}

extension JSONErrorMiddleware {
    /// The routes and their methods, for 405 answers ("*" matches one path segment).
    static let routes: [([String], [String])] = [
        ([""], ["GET"]), (["app.js"], ["GET"]), (["style.css"], ["GET"]), (["healthz"], ["GET"]),
        (["api", "v1", "openapi.json"], ["GET"]), (["api", "v1", "models"], ["GET"]), (["api", "v1", "jobs"], ["POST"]),
        (["api", "v1", "jobs", "*"], ["GET", "DELETE"]), (["api", "v1", "jobs", "*", "events"], ["GET"]),
        (["api", "v1", "jobs", "*", "result"], ["GET"]), (["api", "v1", "jobs", "*", "input"], ["GET"]),
        (["api", "v1", "jobs", "*", "faces", "*", "*"], ["GET"]), (["api", "v1", "jobs", "*", "reblend"], ["POST"]),
        (["api", "v1", "jobs", "*", "rerun"], ["POST"]),
    ]

    /// The methods a path takes, or nil when no route has that shape.
    static func allowedMethods(_ path: String) -> [String]? {
        var parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        if parts.last == "", parts.count > 1 { parts.removeLast() }
        return routes.first { pattern, _ in
            pattern.count == parts.count && zip(pattern, parts).allSatisfy { $0 == "*" ? !$1.isEmpty : $0 == $1 }
        }?.1
    }
}

/// Headers every answer carries: no sniffing, no framing, only our own scripts.
struct SecurityHeadersMiddleware: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        response.headers[.contentSecurityPolicy] = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; connect-src 'self'"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        return response
    }
}

let jsonEncoder: JSONEncoder = {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    e.keyEncodingStrategy = .convertToSnakeCase
    return e
}()

func jsonResponse<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
    var h = headers
    h[.contentType] = "application/json; charset=utf-8"
    h[.cacheControl] = "no-store"
    let data = (try? jsonEncoder.encode(value)) ?? Data(#"{"error":"the answer could not be encoded"}"#.utf8)
    return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

extension ServerState {
    func routes(_ router: Router<Context>) {
        router.add(middleware: JSONErrorMiddleware())
        router.add(middleware: SecurityHeadersMiddleware())

        router.get("/") { _, _ in staticFile(PackageResources.index_html, type: "text/html; charset=utf-8") }
        router.get("/app.js") { _, _ in staticFile(PackageResources.app_js, type: "text/javascript; charset=utf-8") }
        router.get("/style.css") { _, _ in staticFile(PackageResources.style_css, type: "text/css; charset=utf-8") }
        router.get("/healthz") { _, _ in
            let c = self.store.counts
            return jsonResponse(Health(status: self.store.isClosed ? "stopping" : "ok", queued: c.queued, running: c.running,
                                       jobs: c.jobs, workers: self.configuration.workers, model: self.defaultRestorer.modelName))
        }

        let api = router.group("api/v1")
        api.get("openapi.json") { _, _ in staticFile(PackageResources.openapi_json, type: "application/json") }
        api.get("models") { _, _ in jsonResponse(self.modelsReport()) }
        api.post("jobs") { request, context in try await self.upload(request, context: context) }
        api.get("jobs/:id") { _, context in
            let id = try jobID(context)
            guard let snap = self.store.snapshot(id) else { throw APIError(.notFound, "no job \(id)") }
            return jsonResponse(snap)
        }
        api.delete("jobs/:id") { _, context in
            let id = try jobID(context)
            switch self.store.remove(id) {
            case .some(.some(let job)):
                self.cache.remove(id)
                try? FileManager.default.removeItem(at: job.folder)
                return Response(status: .noContent)
            case .some(.none): throw APIError(.notFound, "no job \(id)")
            case .none: throw APIError(.conflict, "job \(id) is running; delete it when it has finished")
            }
        }
        api.get("jobs/:id/events") { _, context in
            let id = try jobID(context)
            guard let stream = self.store.subscribe(id) else { throw APIError(.notFound, "no job \(id)") }
            return Response(status: .ok,
                            headers: [.contentType: "text/event-stream", .cacheControl: "no-store", HTTPField.Name("X-Accel-Buffering")!: "no"],
                            body: ResponseBody { writer in
                                for await snap in stream {
                                    let json = (try? jsonEncoder.encode(snap)).flatMap { String(data: $0, encoding: .utf8) } ?? "{}"
                                    try await writer.write(ByteBuffer(string: "event: job\ndata: \(json)\n\n"))
                                }
                                try await writer.finish(nil)
                            })
        }
        api.get("jobs/:id/result") { request, context in
            let id = try jobID(context)
            let snap = try self.finished(id)
            guard let file = self.resultFile(id) else { throw APIError(.notFound, "job \(id) has no result") }
            let download = request.uri.queryParameters["download"] != nil
            return try await self.fileResponse(file, context: context,
                                               downloadName: download ? Self.restoredName(snap.name, ext: file.pathExtension) : nil)
        }
        api.get("jobs/:id/input") { _, context in
            let id = try jobID(context)
            guard self.store.snapshot(id) != nil, self.inputFile(id) != nil else { throw APIError(.notFound, "no job \(id)") }
            guard let file = self.inputViewFile(id) else { throw APIError(.notFound, "job \(id)'s input is shown once it has been restored") }
            return try await self.fileResponse(file, context: context, downloadName: nil)
        }
        api.get("jobs/:id/faces/:n/:kind") { _, context in
            let id = try jobID(context)
            let snap = try self.finished(id)
            guard let n = context.parameters.get("n", as: Int.self), snap.faces.indices.contains(n) else {
                throw APIError(.notFound, "job \(id) has \(snap.faces.count) face\(snap.faces.count == 1 ? "" : "s") (numbered from 0)")
            }
            let kind = context.parameters.get("kind") ?? ""
            guard kind == "cropped" || kind == "restored" else { throw APIError(.notFound, "a face is 'cropped' or 'restored'") }
            return try await self.fileResponse(self.faceFile(id, index: n, restored: kind == "restored"), context: context, downloadName: nil)
        }
        api.post("jobs/:id/reblend") { request, context in
            let id = try jobID(context)
            let body = try await request.body.collect(upTo: 64 * 1024)
            let form = try ReblendForm.parse(body, contentType: request.headers[.contentType])
            return jsonResponse(try await self.reblend(id, weight: form.weight, faces: form.faces))
        }
        api.post("jobs/:id/rerun") { request, context in
            let id = try jobID(context)
            let body = try await request.body.collect(upTo: 64 * 1024)
            return try self.rerun(id, fields: try RerunForm.parse(body, contentType: request.headers[.contentType]), context: context)
        }
    }

    /// The job, which must have finished well.
    func finished(_ id: JobID) throws -> JobSnapshot {
        guard let snap = store.snapshot(id) else { throw APIError(.notFound, "no job \(id)") }
        guard snap.status == .done else {
            throw APIError(snap.status == .failed ? .notFound : .conflict,
                           snap.status == .failed ? "job \(id) failed: \(snap.error ?? "")" : "job \(id) is \(snap.status.rawValue)")
        }
        return snap
    }

    static func restoredName(_ name: String, ext: String) -> String {
        let base = (name as NSString).deletingPathExtension
        let ascii = String(base.unicodeScalars.map { $0.isASCII && $0.properties.isAlphabetic || ("0"..."9").contains(Character($0)) || "-_. ".unicodeScalars.contains($0) ? Character($0) : "_" })
        return "\(ascii.isEmpty ? "image" : ascii)_restored.\(ext)"
    }

    func fileResponse(_ file: URL, context: Context, downloadName: String?) async throws -> Response {
        guard FileManager.default.fileExists(atPath: file.path) else { throw APIError(.notFound, "not found") }
        let body = try await FileIO().loadFile(path: file.path, context: context)
        let type = ["png": "image/png", "webp": "image/webp", "mp4": "video/mp4", "mov": "video/quicktime",
                    "webm": "video/webm"][file.pathExtension] ?? "image/jpeg"
        var headers: HTTPFields = [.contentType: type, .cacheControl: "no-cache"]
        if let downloadName { headers[.contentDisposition] = "attachment; filename=\"\(downloadName)\"" }
        return Response(status: .ok, headers: headers, body: body)
    }

    // MARK: upload

    /// `POST /api/v1/jobs`: streams each `image` part to its job folder, then checks every upload
    /// from its header and queues them all, or none.
    func upload(_ request: Request, context: Context) async throws -> Response {
        guard !store.isClosed else { throw APIError(.serviceUnavailable, "the server is shutting down", retryAfter: 30) }
        guard let type = request.headers[.contentType], let boundary = MultipartParser.boundary(contentType: type) else {
            throw APIError(.badRequest, "send the images as multipart/form-data with one or more 'image' fields")
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > configuration.maxUploadBytes {
            throw APIError(.contentTooLarge, "the upload is \(length) bytes; this server takes at most \(configuration.maxUploadBytes) per request")
        }
        var parser = MultipartParser(boundary: boundary, maxParts: configuration.maxImagesPerRequest + 16)
        var uploads: [SavedUpload] = []
        var fields: [String: String] = [:]
        var current: (name: String, file: FileHandle?, text: [UInt8])?
        var total = 0
        do {
            for try await chunk in request.body {
                total += chunk.readableBytes
                guard total <= configuration.maxUploadBytes else {
                    throw APIError(.contentTooLarge, "the upload is over this server's limit of \(configuration.maxUploadBytes) bytes per request")
                }
                for event in try parser.feed(chunk.readableBytesView) {
                    switch event {
                    case .begin(let head):
                        if head.name == "image" {
                            guard uploads.count < configuration.maxImagesPerRequest else {
                                throw APIError(.badRequest, "at most \(configuration.maxImagesPerRequest) images per request")
                            }
                            let u = try newUpload(name: head.filename ?? "image")
                            uploads.append(u)
                            _ = FileManager.default.createFile(atPath: u.folder.appendingPathComponent("upload").path, contents: nil)
                            current = (head.name, try FileHandle(forWritingTo: u.folder.appendingPathComponent("upload")), [])
                        } else {
                            current = (head.name, nil, [])
                        }
                    case .data(let bytes):
                        if let file = current?.file {
                            try file.write(contentsOf: bytes)
                        } else if current != nil {
                            current!.text += bytes
                            guard current!.text.count <= 1024 else { throw APIError(.badRequest, "form field '\(current!.name)' is too long") }
                        }
                    case .end:
                        if let c = current {
                            if let file = c.file { try file.close() } else { fields[c.name] = String(decoding: c.text, as: UTF8.self) }
                        }
                        current = nil
                    }
                }
            }
            try current?.file?.close()
            do { try parser.finish() } catch let e as MultipartError { throw APIError(.badRequest, e.description) }
            guard !uploads.isEmpty else { throw APIError(.badRequest, "no 'image' field in the form") }
            let job = try JobRequest(form: fields)
            try validate(job)
            for u in uploads { _ = try check(u, request: job) }
            try queue(uploads, job)
            context.logger.info("queued", metadata: ["jobs": "\(uploads.map(\.id.value).joined(separator: ","))", "bytes": "\(total)"])
            return jsonResponse(Accepted(jobs: uploads.map { .init(id: $0.id.value, status: .queued, name: $0.name) }), status: .accepted)
        } catch let e as MultipartError {
            try? current?.file?.close()
            discard(uploads)
            throw APIError(.badRequest, e.description)
        } catch {
            try? current?.file?.close()
            discard(uploads)
            throw error
        }
    }

    /// Queues checked uploads as jobs, all or none.
    func queue(_ uploads: [SavedUpload], _ request: JobRequest) throws {
        do {
            try store.submit(uploads.map { ($0.id, request, $0.folder, $0.name) })
        } catch JobError.queueFull(let retry) {
            throw APIError(.serviceUnavailable, "the queue is full (\(store.capacity) jobs waiting); try again shortly", retryAfter: retry)
        } catch {
            throw APIError(.serviceUnavailable, "the server is shutting down", retryAfter: 30)
        }
    }

    // MARK: rerun

    /// `POST /api/v1/jobs/{id}/rerun`: a new job from a job's kept upload, with the fields given
    /// changed and the rest as that job has them (another fidelity weight runs the network again).
    /// Checked and queued exactly as an upload is; the first job stays as it is.
    func rerun(_ id: JobID, fields: [String: String], context: Context) throws -> Response {
        guard !store.isClosed else { throw APIError(.serviceUnavailable, "the server is shutting down", retryAfter: 30) }
        guard let job = store.job(id) else { throw APIError(.notFound, "no job \(id)") }
        let request = try JobRequest(form: fields, base: job.request, otherFields: [])
        try validate(request)
        let gone = APIError(.notFound, "job \(id) has no upload any more")
        guard let input = inputFile(id) else { throw gone }
        let upload = try newUpload(name: job.snapshot.name)
        do {
            let kept = upload.folder.appendingPathComponent("upload")
            // The upload is never written again: the new job may share its file.
            do { try FileManager.default.linkItem(at: input, to: kept) } catch {
                do { try FileManager.default.copyItem(at: input, to: kept) } catch { throw gone }
            }
            _ = try check(upload, request: request)
            try queue([upload], request)
        } catch {
            discard([upload])
            throw error
        }
        context.logger.info("queued", metadata: ["jobs": "\(upload.id)", "rerun of": "\(id)"])
        return jsonResponse(Accepted(jobs: [.init(id: upload.id.value, status: .queued, name: upload.name)]), status: .accepted)
    }
}

/// The job id from the path; anything that is not one is an unknown job.
func jobID(_ context: Context) throws -> JobID {
    let text = context.parameters.get("id") ?? ""
    guard let id = JobID(Substring(text)) else { throw APIError(.notFound, "no job '\(text.prefix(64))'") }
    return id
}

func staticFile(_ bytes: [UInt8], type: String) -> Response {
    Response(status: .ok, headers: [.contentType: type, .cacheControl: "no-cache"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
}

struct Health: Codable {
    var status: String
    var queued: Int
    var running: Int
    var jobs: Int
    var workers: Int
    var model: String
}

struct Accepted: Codable {
    struct Job: Codable {
        var id: String
        var status: JobState
        var name: String
    }
    var jobs: [Job]
}

extension JobRequest {
    /// The text fields of an upload form (besides `image`) and of a rerun.
    static let formFields = ["background", "fidelity", "keep_gray", "model", "only_center_face", "upscale", "weight"]

    /// From the upload form's text fields (a rerun's: over the first job's request); unknown
    /// fields are refused so a typo is not ignored.
    init(form: [String: String], base: JobRequest = JobRequest(), otherFields: [String] = ["image"]) throws {
        self = base
        if let unknown = form.keys.sorted().first(where: { !Self.formFields.contains($0) }) {
            throw APIError(.badRequest, "unknown form field '\(unknown.prefix(40))' (known: \((otherFields + Self.formFields).joined(separator: ", ")))")
        }
        if let m = form["model"]?.trimmingCharacters(in: .whitespaces) { model = m.isEmpty || m == "auto" || m == "default" ? nil : m }
        if let w = form["weight"], !w.isEmpty {
            guard let v = Double(w), v.isFinite else { throw APIError(.badRequest, "weight must be a number from 0 to 1") }
            weight = v
        }
        if let f = form["fidelity"], !f.isEmpty {
            guard let v = Double(f), v.isFinite else { throw APIError(.badRequest, "fidelity must be a number from 0 to 1") }
            fidelity = v
        }
        if let s = form["upscale"], !s.isEmpty {
            guard let v = Int(s) else { throw APIError(.badRequest, "upscale must be a whole number from 1 to 8") }
            upscale = v
        }
        if let b = form["background"], !b.isEmpty {
            switch b {
            case "none": background = false
            case "realesrgan": background = true
            default: throw APIError(.badRequest, "background is 'none' or 'realesrgan'")
            }
        }
        func flag(_ name: String) throws -> Bool? {
            guard let c = form[name], !c.isEmpty else { return nil }
            switch c.lowercased() {
            case "1", "true", "on", "yes": return true
            case "0", "false", "off", "no": return false
            default: throw APIError(.badRequest, "\(name) is true or false")
            }
        }
        onlyCenterFace = try flag("only_center_face") ?? onlyCenterFace
        keepGray = try flag("keep_gray") ?? keepGray
    }
}

/// `POST …/rerun`: the upload form's fields as JSON (`{"fidelity": 0.7}`) or URL-encoded
/// (`fidelity=0.7`), as text for `JobRequest(form:base:)`.
enum RerunForm {
    /// One JSON value as the form's text: a bool, a number or a string; null leaves the field out.
    private struct Value: Decodable {
        var text: String?
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { text = nil }
            else if let b = try? c.decode(Bool.self) { text = b ? "true" : "false" }
            else if let i = try? c.decode(Int.self) { text = String(i) }
            else if let d = try? c.decode(Double.self) { text = "\(d)" }
            else { text = try c.decode(String.self) }
        }
    }

    static func parse(_ body: ByteBuffer, contentType: String?) throws -> [String: String] {
        let data = Data(body.readableBytesView)
        if contentType?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true {
            var fields: [String: String] = [:]
            for pair in String(decoding: data, as: UTF8.self).split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1).map {
                    String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
                }
                fields[kv[0]] = kv.count == 2 ? kv[1] : ""
            }
            return fields
        }
        if data.isEmpty { return [:] }
        do { return try JSONDecoder().decode([String: Value].self, from: data).compactMapValues(\.text) } catch {
            throw APIError(.badRequest, "send JSON like {\"fidelity\": 0.7} with any of the upload's fields (\(JobRequest.formFields.joined(separator: ", ")))")
        }
    }
}

/// `POST …/reblend`: JSON `{"weight": 0.3, "faces": [0, 2]}` or a URL-encoded form `weight=0.3&faces=0,2`.
struct ReblendForm: Decodable {
    var weight: Double?
    var faces: [Int]?

    static func parse(_ body: ByteBuffer, contentType: String?) throws -> ReblendForm {
        let data = Data(body.readableBytesView)
        if contentType?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true {
            var form = ReblendForm()
            for pair in String(decoding: data, as: UTF8.self).split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
                guard kv.count == 2 else { continue }
                switch kv[0] {
                case "weight":
                    guard let w = Double(kv[1]), w.isFinite else { throw APIError(.badRequest, "weight must be a number from 0 to 1") }
                    form.weight = w
                case "faces":
                    let items = kv[1].split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
                    guard !items.contains(nil) else { throw APIError(.badRequest, "faces is a list of face numbers, e.g. 0,2") }
                    form.faces = items.compactMap { $0 }
                default:
                    throw APIError(.badRequest, "unknown field '\(kv[0].prefix(40))' (known: weight, faces)")
                }
            }
            return form
        }
        if data.isEmpty { return ReblendForm() }
        let example = "send JSON like {\"weight\": 0.5, \"faces\": [0, 1]}"
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw APIError(.badRequest, example) }
        if let unknown = object.keys.sorted().first(where: { $0 != "weight" && $0 != "faces" }) {
            throw APIError(.badRequest, "unknown field '\(unknown.prefix(40))' (known: weight, faces)")
        }
        do { return try JSONDecoder().decode(ReblendForm.self, from: data) } catch { throw APIError(.badRequest, example) }
    }
}
