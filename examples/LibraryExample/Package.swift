// swift-tools-version:6.0
// An app that restores one photo with the FaceRestore library:
//   swift run -c release --package-path examples/LibraryExample LibraryExample IN OUT
import PackageDescription

let package = Package(
    name: "LibraryExample",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "FaceRestore", path: "../..")],
    targets: [
        .executableTarget(name: "LibraryExample", dependencies: [.product(name: "FaceRestore", package: "FaceRestore")]),
    ]
)
