import Foundation
@testable import SegKitCore

/// The golden vectors written by android_demo/tools/make_golden.py, shared with the Android
/// core's JUnit tests (SEGKIT_GOLDEN_DIR overrides the location).
enum Golden {
    static let directory: URL = {
        if let dir = ProcessInfo.processInfo.environment["SEGKIT_GOLDEN_DIR"] {
            return URL(fileURLWithPath: dir)
        }
        var root = URL(fileURLWithPath: #filePath)  // .../ios_demo/SegKitCore/Tests/SegKitCoreTests/Golden.swift
        for _ in 0..<5 { root.deleteLastPathComponent() }
        return root.appendingPathComponent("android_demo/core/src/test/resources/golden")
    }()

    static func data(_ name: String) -> Data {
        let url = directory.appendingPathComponent(name)
        guard let data = try? Data(contentsOf: url) else {
            fatalError("golden file \(url.path) is missing; regenerate with android_demo/tools/make_golden.py")
        }
        return data
    }

    static func bytes(_ name: String) -> [UInt8] { [UInt8](data(name)) }

    static var contractData: Data { data("contract.json") }

    static var contract: ModelContract {
        switch ModelContract.parse(contractData) {
        case .success(let contract): return contract
        case .failure(let error): fatalError("golden contract does not parse: \(error.message)")
        }
    }

    static var meta: [String: Any] {
        (try? JSONSerialization.jsonObject(with: data("golden.json"))) as? [String: Any] ?? [:]
    }

    static func frame() -> [RGBA] {
        let rgb = bytes("input_rgb.u8")
        return stride(from: 0, to: rgb.count, by: 3).map { RGBA(r: rgb[$0], g: rgb[$0 + 1], b: rgb[$0 + 2]) }
    }

    static func expected() -> [Int] { bytes("expected_classes.u8").map(Int.init) }

    /// The golden contract text with one piece replaced, for the error tests.
    static func contractWith(_ old: String, _ new: String) -> Data {
        let text = String(decoding: contractData, as: UTF8.self)
        precondition(text.contains(old), "golden contract has no '\(old)'")
        return Data(text.replacingOccurrences(of: old, with: new).utf8)
    }
}
