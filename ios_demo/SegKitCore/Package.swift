// swift-tools-version:5.9
// The platform-free core of the iOS demo: contract parsing, tensor encoding/decoding,
// geometry, overlay colours and the screen state. No UIKit, Core ML or AVFoundation here, so
// `swift test` runs it on macOS (or on Linux with a Swift toolchain) against the golden
// vectors in android_demo/core/src/test/resources/golden.
import PackageDescription

let package = Package(
    name: "SegKitCore",
    platforms: [.iOS(.v16), .macOS(.v13)],
    products: [
        .library(name: "SegKitCore", targets: ["SegKitCore"]),
    ],
    targets: [
        .target(name: "SegKitCore"),
        .testTarget(name: "SegKitCoreTests", dependencies: ["SegKitCore"]),
    ]
)
