// swift-tools-version:6.0
// FaceRestore: native Swift GAN-prior blind face restoration (GFP-GAN, GPEN).
// Layers depend one way only: Engine → Weights → Models → Imaging/Pipeline → FaceRestore (the
// library apps import) → CLI and the web server (`FaceRestoreServer`, on Hummingbird). Apps depend
// on the `FaceRestore` product alone.
import PackageDescription

let package = Package(
    name: "FaceRestore",
    platforms: [.macOS(.v15)],   // Synchronization.Mutex
    products: [
        .library(name: "FaceRestore", targets: ["FaceRestore"]),
        .library(name: "FaceRestoreEngine", targets: ["FaceRestoreEngine"]),
        .library(name: "FaceRestoreWeights", targets: ["FaceRestoreWeights"]),
        .library(name: "FaceRestoreModels", targets: ["FaceRestoreModels"]),
        .library(name: "FaceRestoreImaging", targets: ["FaceRestoreImaging"]),
        .library(name: "FaceRestorePipeline", targets: ["FaceRestorePipeline"]),
        .library(name: "FaceRestoreEvaluation", targets: ["FaceRestoreEvaluation"]),
        .library(name: "FaceRestoreServer", targets: ["FaceRestoreServer"]),
        .executable(name: "facerestore", targets: ["facerestore"]),
        .executable(name: "facerestore-bench", targets: ["facerestore-bench"]),
        .executable(name: "facerestore-fuzz", targets: ["facerestore-fuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // `facerestore serve`: HTTP server, its test client, logs.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        // `swift package generate-documentation` for the DocC catalog (a plugin: not linked).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        // oneDNN 2.x C API (Debian libdnnl-dev; no pkg-config file) and the OpenMP thread knob.
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL"),

        // Our fused Winograd convolution kernel and one-pass GroupNorm + swish (AVX-512 through target
        // attributes; checked at run time).
        .target(name: "CWinograd", path: "Sources/CWinograd"),
        .target(name: "FaceRestoreEngine", dependencies: ["CDNNL", "CWinograd"]),
        // zlib's CRC-32, for the integrity of zip members (.pth files).
        .target(name: "CChecksum", path: "Sources/CChecksum", linkerSettings: [.linkedLibrary("z")]),
        .target(name: "FaceRestoreWeights", dependencies: ["FaceRestoreEngine", "CChecksum"]),
        .target(name: "FaceRestoreModels", dependencies: ["FaceRestoreEngine", "FaceRestoreWeights"]),
        // libpng (classic API behind a C layer: it needs setjmp), TurboJPEG 2.x and libexif; the
        // archive formats: libtiff, libwebp (with its mux/demux for metadata chunks), libheif; zlib.
        .target(name: "CImageCodecs", path: "Sources/CImageCodecs",
                linkerSettings: [.linkedLibrary("png16"), .linkedLibrary("turbojpeg"), .linkedLibrary("exif"),
                                 .linkedLibrary("tiff"), .linkedLibrary("webp"), .linkedLibrary("webpmux"),
                                 .linkedLibrary("webpdemux"), .linkedLibrary("heif"), .linkedLibrary("z")]),
        .target(name: "FaceRestoreImaging", dependencies: ["FaceRestoreEngine", "CImageCodecs"]),
        .target(name: "FaceRestorePipeline", dependencies: ["FaceRestoreWeights", "FaceRestoreModels", "FaceRestoreImaging"]),
        // The papers' evaluation: the synthetic degradation model and the metrics (PSNR, SSIM, NIQE,
        // BRISQUE, identity), at parity with basicsr and OpenCV.
        // Its wide inner loops (the degradation's blur, SSIM's windows): AVX-512 by target attributes.
        .target(name: "CEvaluation", path: "Sources/CEvaluation"),
        // FID's Fréchet distance: a pivoted Cholesky, products and symmetric eigenvalues of 2048²
        // matrices in double through the system OpenBLAS (Debian libopenblas0), loaded on first use.
        .target(name: "CLinearAlgebra", path: "Sources/CLinearAlgebra"),
        .target(name: "FaceRestoreEvaluation", dependencies: ["FaceRestoreEngine", "FaceRestoreWeights", "FaceRestoreModels", "FaceRestoreImaging", "CChecksum", "CEvaluation", "CLinearAlgebra"]),
        // The product layer: model store, recipes applied, whole jobs, outputs (re-exports the rest).
        .target(name: "FaceRestore",
                dependencies: ["FaceRestoreEngine", "FaceRestoreWeights", "FaceRestoreModels", "FaceRestoreImaging", "FaceRestorePipeline",
                               "FaceRestoreEvaluation"]),
        // The web app: REST API, job queue and workers, the page (embedded in the binary).
        .target(name: "FaceRestoreServer",
                dependencies: [
                    "FaceRestore",
                    .product(name: "Hummingbird", package: "hummingbird"),
                    .product(name: "Logging", package: "swift-log"),
                ],
                resources: [.embedInCode("Page/index.html"), .embedInCode("Page/app.js"), .embedInCode("Page/style.css"),
                            .embedInCode("Page/openapi.json")]),
        .executableTarget(
            name: "facerestore",
            dependencies: [
                "FaceRestore",
                "FaceRestoreEvaluation",
                "FaceRestoreServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // Benchmarks: our time and the reference PyTorch time in the same run (see README).
        .target(name: "CPeak", path: "Sources/CPeak"),
        .executableTarget(name: "facerestore-bench",
                          dependencies: ["FaceRestoreEngine", "FaceRestoreWeights", "FaceRestoreModels", "FaceRestorePipeline", "CPeak"]),

        // Fuzz targets over every parser of untrusted bytes (scripts/fuzz builds it with libFuzzer).
        .target(name: "FaceRestoreFuzzing", dependencies: ["FaceRestoreImaging", "FaceRestoreWeights", "FaceRestoreEvaluation"]),
        .executableTarget(name: "facerestore-fuzz", dependencies: ["FaceRestoreFuzzing"]),

        .testTarget(name: "FaceRestoreEngineTests", dependencies: ["FaceRestoreEngine", "FaceRestoreWeights"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "FaceRestoreWeightsTests", dependencies: ["FaceRestoreWeights"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "FaceRestoreModelsTests", dependencies: ["FaceRestoreModels", "FaceRestoreImaging"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "FaceRestoreImagingTests", dependencies: ["FaceRestoreImaging", "FaceRestoreWeights"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "FaceRestorePipelineTests", dependencies: ["FaceRestorePipeline", "FaceRestoreImaging", "FaceRestoreWeights"]),
        .testTarget(name: "FaceRestoreTests", dependencies: ["FaceRestore"]),
        .testTarget(name: "FaceRestoreEvaluationTests", dependencies: ["FaceRestoreEvaluation", "FaceRestoreImaging"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "FaceRestoreFuzzingTests", dependencies: ["FaceRestoreFuzzing"], exclude: ["corpus", "regressions"]),
        .testTarget(name: "FaceRestoreServerTests",
                    dependencies: ["FaceRestoreServer", "facerestore", .product(name: "HummingbirdTesting", package: "hummingbird"),
                                   .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "FaceRestoreCLITests", dependencies: ["facerestore", "FaceRestore"],
                    resources: [.copy("Fixtures")]),
    ]
)
