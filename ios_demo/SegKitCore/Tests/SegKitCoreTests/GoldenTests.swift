import XCTest
@testable import SegKitCore

/// The same acceptance check as the Android core: from the golden frame and the raw int8 output
/// of a real exported model, reproduce the model input and the expected class map exactly.
final class GoldenTests: XCTestCase {
    func testGoldenContractIsTheFullInt8Export() {
        let c = Golden.contract
        XCTAssertEqual(c.schemaVersion, AppContract.supportedSchemaVersion)
        XCTAssertEqual(c.input.layout, "NHWC")
        XCTAssertEqual(c.input.dtype, "int8")
        XCTAssertEqual(c.output.semantics, "logits")
        XCTAssertNotNil(c.input.quantization)
        XCTAssertNotNil(c.output.quantization)
    }

    func testPreprocessingReproducesTheInt8InputTensorExactly() {
        let spec = Golden.contract.input
        let encoded = InputEncoder.encodeQuantized(Golden.frame(), width: spec.width, height: spec.height, spec: spec)
        let want = Golden.bytes("input_tensor.bin").map { Int(Int8(bitPattern: $0)) }
        XCTAssertEqual(encoded, want)
    }

    func testClassMapFromRawInt8OutputMatchesExactly() {
        let classes = OutputDecoder.argmaxQuantized(raw: Golden.bytes("output_raw.bin"), spec: Golden.contract.output)
        XCTAssertEqual(classes, Golden.expected())
    }

    func testDequantizedArgmaxAgreesInBothLayouts() {
        let spec = Golden.contract.output
        let nhwc = OutputDecoder.logits(raw: Golden.bytes("output_raw.bin"), spec: spec)
        let (h, w, c) = (spec.height, spec.width, spec.channels)
        XCTAssertEqual(OutputDecoder.argmaxNHWC(nhwc, height: h, width: w, classes: c), Golden.expected())
        var nchw = [Float](repeating: 0, count: nhwc.count)
        for p in 0..<(h * w) { for k in 0..<c { nchw[k * h * w + p] = nhwc[p * c + k] } }
        // The Core ML path: float logits, classes first.
        let nchwSpec = TensorSpec(name: "logits", shape: [1, c, h, w], layout: "NCHW", dtype: "float16", semantics: "logits")
        XCTAssertEqual(OutputDecoder.classMap(logits: nchw, spec: nchwSpec), Golden.expected())
    }

    func testDequantizationMatchesPythonBitForBit() {
        let spec = Golden.contract.output
        let logits = OutputDecoder.logits(raw: Golden.bytes("output_raw.bin"), spec: spec)
        let samples = Golden.meta["dequantized_samples"] as? [[String: Any]] ?? []
        XCTAssertEqual(samples.count, 3)
        for sample in samples {
            let y = sample["y"] as! Int, x = sample["x"] as! Int
            let want = (sample["logits"] as! [NSNumber]).map { Float($0.doubleValue) }
            let got = (0..<spec.channels).map { logits[(y * spec.width + x) * spec.channels + $0] }
            XCTAssertEqual(got, want, "logits at (\(y), \(x))")
        }
    }

    func testTheGoldenFrameShowsAtLeastThreeClassesAndTheLegendCountsThem() {
        let contract = Golden.contract
        let expected = Golden.expected()
        let present = Golden.meta["classes_present"] as? [String: Int] ?? [:]
        XCTAssertGreaterThanOrEqual(present.count, 3)
        for entry in Overlay.legend(contract.classes, classMap: expected) {
            XCTAssertEqual(entry.fraction, Float(present[entry.name] ?? 0) / Float(expected.count), accuracy: 1e-6)
        }
    }
}
