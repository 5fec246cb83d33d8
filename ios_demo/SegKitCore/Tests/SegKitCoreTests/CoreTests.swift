import XCTest
@testable import SegKitCore

final class ContractTests: XCTestCase {
    private func error(_ data: Data) -> SegmentationError? {
        if case .failure(let e) = ModelContract.parse(data) { return e }
        return nil
    }

    func testNewerSchemaIsRefusedBeforeAnythingElse() {
        let data = Golden.contractWith("\"schema_version\": 1", "\"schema_version\": 2")
        XCTAssertEqual(error(data), .unsupportedSchema(found: 2, supported: 1))
        XCTAssertTrue(error(data)!.message.contains("version 2 (newer)"))
    }

    func testMissingVersionAndBrokenJSON() {
        XCTAssertTrue(error(Data("{\"hello\": 1}".utf8))!.message.contains("no schema_version"))
        if case .contractInvalid = error(Data("{\"schema_version\": 1,,}".utf8))! {} else { XCTFail("broken JSON accepted") }
    }

    func testMissingFieldIsNamed() {
        let data = Golden.contractWith("\"layout\": \"NHWC\"", "\"lay\": \"NHWC\"")
        XCTAssertTrue(error(data)!.message.contains("layout is missing"), error(data)!.message)
    }

    func testTheInt8TFLiteContractIsNotWhatTheIOSAppRuns() {
        XCTAssertNotNil(Golden.contract.unsupportedReason)  // NHWC int8: that is the Android model
    }
}

final class TensorTests: XCTestCase {
    func testQuantizeRoundsHalfToEvenAndClamps() {
        let q = Quantization(scale: 0.5, zeroPoint: 0)
        XCTAssertEqual(InputEncoder.quantize(1.25, q, dtype: "int8"), 2)
        XCTAssertEqual(InputEncoder.quantize(1.75, q, dtype: "int8"), 4)
        XCTAssertEqual(InputEncoder.quantize(-1.25, q, dtype: "int8"), -2)
        XCTAssertEqual(InputEncoder.quantize(1000, q, dtype: "int8"), 127)
        XCTAssertEqual(InputEncoder.quantize(-1000, q, dtype: "int8"), -128)
    }

    func testPlanarAndInterleavedLayouts() {
        let norm = Normalization(inModel: true, pixelScale: 1, mean: [0, 0, 0], std: [1, 1, 1])
        let pixels = [RGBA(r: 10, g: 20, b: 30), RGBA(r: 40, g: 50, b: 60)]
        let nchw = TensorSpec(name: "image", shape: [1, 3, 1, 2], layout: "NCHW", dtype: "float32", normalization: norm, kind: "tensor")
        XCTAssertEqual(InputEncoder.encodeFloat(pixels, width: 2, height: 1, spec: nchw), [10, 40, 20, 50, 30, 60])
        let nhwc = TensorSpec(name: "image", shape: [1, 1, 2, 3], layout: "NHWC", dtype: "uint8", normalization: norm, kind: "tensor")
        XCTAssertEqual(InputEncoder.encodeQuantized(pixels, width: 2, height: 1, spec: nhwc), [10, 20, 30, 40, 50, 60])
    }

    func testPaddingIsTheTrainingMean() {
        let norm = Golden.contract.input.normalization!
        XCTAssertEqual(InputEncoder.paddingColor(norm), RGBA(r: 124, g: 116, b: 104))
    }

    func testArgmaxTakesTheFirstMaximum() {
        XCTAssertEqual(OutputDecoder.argmaxNHWC([0, 5, 5, 1, 1, 1], height: 1, width: 2, classes: 3), [1, 0])
        XCTAssertEqual(OutputDecoder.argmaxNCHW([0, 9, 3, 1], classes: 2, height: 1, width: 2), [1, 0])
    }
}

final class GeometryTests: XCTestCase {
    private func assertPoint(_ t: Affine, _ x: Float, _ y: Float, _ wx: Float, _ wy: Float,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(t.mapX(x, y), wx, accuracy: 1e-4, file: file, line: line)
        XCTAssertEqual(t.mapY(x, y), wy, accuracy: 1e-4, file: file, line: line)
    }

    func testRotationsAndFits() {
        let frame = Size(640, 480)
        assertPoint(Geometry.rotation(frame, degrees: 90), 0, 0, 480, 0)
        assertPoint(Geometry.rotation(frame, degrees: 270), 0, 0, 0, 640)
        XCTAssertEqual(Geometry.uprightSize(frame, rotation: 90), Size(480, 640))
        let letterbox = Geometry.fit(Size(480, 640), into: Size(128, 64), mode: .letterbox)
        assertPoint(letterbox, 0, 0, 40, 0)
        let crop = Geometry.fit(Size(640, 480), into: Size(128, 64), mode: .centerCrop)
        assertPoint(crop, 0, 0, 0, -16)
        let t = Geometry.frameToModel(frame, rotation: 90, model: Size(128, 64), mode: .letterbox)
        assertPoint(t, 640, 480, 40, 64)
        assertPoint(t.after(t.inverse()), 3, 5, 3, 5)
    }

    func testModelRectInView() {
        let r = Geometry.modelRectInView(upright: Size(480, 640), model: Size(128, 64), modelMode: .centerCrop,
                                         view: Size(1080, 1440), viewMode: .centerCrop)
        XCTAssertEqual(r.top, 450, accuracy: 1e-3)
        XCTAssertEqual(r.bottom, 990, accuracy: 1e-3)
        XCTAssertEqual(r.width, 1080, accuracy: 1e-3)
    }

    func testExifOrientations() {
        XCTAssertEqual((0...8).map(Geometry.exifToDegrees), [0, 0, 0, 180, 180, 90, 90, 270, 270])
    }
}

final class OverlayTests: XCTestCase {
    let red = RGBA(r: 255, g: 0, b: 0), blue = RGBA(r: 0, g: 0, b: 255)

    func testColorizeAndBlend() {
        let out = Overlay.colorize([0, 1, 255], colors: [red, blue], opacity: 0.5)
        XCTAssertEqual(out, [RGBA(r: 255, g: 0, b: 0, a: 128), RGBA(r: 0, g: 0, b: 255, a: 128), .clear])
        let grey = RGBA(r: 100, g: 100, b: 100)
        XCTAssertEqual(Overlay.blend(grey, RGBA(r: 255, g: 0, b: 0, a: 128)), RGBA(r: 178, g: 50, b: 50))
        XCTAssertEqual(Overlay.blend(grey, .clear), grey)
        XCTAssertEqual(red.hex, "#FF0000")
    }

    func testComposeLetterboxedPhoto() {
        let photo = [RGBA](repeating: RGBA(r: 0, g: 0, b: 0), count: 8)
        let classMap = [1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1]
        let t = Geometry.frameToModel(Size(4, 2), rotation: 0, model: Size(4, 4), mode: .letterbox)
        let out = Overlay.compose(photo: photo, photoSize: Size(4, 2), classMap: classMap, model: Size(4, 4),
                                  frameToModel: t, colors: [red, blue], opacity: 1)
        XCTAssertEqual(out, [red, red, blue, blue, blue, blue, red, red])
    }
}

final class StateTests: XCTestCase {
    func testErrorsBlockTheScreenWithoutCrashing() {
        var s = reduce(DemoState(), .modelFailed(.modelMissing(AppContract.modelResource)))
        XCTAssertEqual(s.blockingError, .modelMissing(AppContract.modelResource))
        XCTAssertFalse(s.canSegmentCamera)
        s = reduce(reduce(DemoState(), .modelLoaded(Golden.contract)), .cameraStatus(.denied))
        XCTAssertEqual(s.blockingError, .cameraPermissionDenied)
        XCTAssertNil(reduce(s, .sourceChosen(.photo)).blockingError)
        s = reduce(s, .cameraStatus(.granted))
        XCTAssertTrue(s.canSegmentCamera)
    }

    func testComputeUnitsFallBackToCPUWithANotice() {
        let s = reduce(reduce(DemoState(), .computeUnitsChosen(.gpu)), .computeUnitsFailed(.gpu, "no Metal"))
        XCTAssertEqual(s.computeUnits, .cpu)
        XCTAssertTrue(s.notice!.contains("no Metal"))
    }

    func testFpsMeter() {
        var meter = FpsMeter(window: 4)
        XCTAssertEqual(meter.tick(0), 0)
        _ = meter.tick(0.1)
        XCTAssertEqual(meter.tick(0.2), 10, accuracy: 1e-9)
        _ = meter.tick(0.3)
        XCTAssertEqual(meter.tick(0.5), 7.5, accuracy: 1e-9)
    }
}
