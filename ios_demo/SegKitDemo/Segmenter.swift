import CoreImage
import CoreML
import CoreVideo
import Foundation
import QuartzCore
import SegKitCore

/// One frame's result, with the pre / inference / post times.
struct SegmentationResult {
    let classMap: [Int]
    let model: SegKitCore.Size
    /// The frame once upright, and how it was fitted into the model input.
    let upright: SegKitCore.Size
    let mode: FitMode
    let frameToModel: Affine
    let timings: Timings
}

extension ComputeUnits {
    var mlComputeUnits: MLComputeUnits {
        switch self {
        case .cpu: return .cpuOnly
        case .gpu: return .cpuAndGPU
        case .neuralEngine: return .cpuAndNeuralEngine
        }
    }
}

/// The only type that touches Core ML. Inference runs on one serial queue; results come back
/// as `Result<SegmentationResult, SegmentationError>` (typed errors, nothing thrown at the UI).
final class Segmenter: @unchecked Sendable {  // state is confined to `queue` or guarded by `lock`
    let contract: ModelContract
    let computeUnits: ComputeUnits
    private let model: MLModel
    private let queue = DispatchQueue(label: "dev.segkit.demo.inference", qos: .userInitiated)
    private let context = CIContext(options: [.cacheIntermediates: false])
    private var buffer: CVPixelBuffer?
    private let lock = NSLock()
    private var inFlight = false

    private init(contract: ModelContract, computeUnits: ComputeUnits, model: MLModel) {
        self.contract = contract
        self.computeUnits = computeUnits
        self.model = model
    }

    /// Loads the compiled model and its contract from the bundle and checks they fit together.
    static func load(computeUnits: ComputeUnits, bundle: Bundle = .main) -> Result<Segmenter, SegmentationError> {
        guard let modelURL = bundle.url(forResource: AppContract.modelResource, withExtension: "mlmodelc") else {
            return .failure(.modelMissing(AppContract.modelPackage))
        }
        guard let contractURL = bundle.url(forResource: AppContract.contractResource, withExtension: nil),
              let data = try? Data(contentsOf: contractURL) else {
            return .failure(.contractMissing(AppContract.contractResource))
        }
        let contract: ModelContract
        switch ModelContract.parse(data) {
        case .failure(let error): return .failure(error)
        case .success(let parsed): contract = parsed
        }
        if let reason = contract.unsupportedReason { return .failure(.unsupportedModel(reason)) }
        let configuration = MLModelConfiguration()
        configuration.computeUnits = computeUnits.mlComputeUnits
        let model: MLModel
        do {
            model = try MLModel(contentsOf: modelURL, configuration: configuration)
        } catch {
            return computeUnits == .cpu ? .failure(.inferenceFailed(error.localizedDescription))
                : .failure(.computeUnitsUnavailable(computeUnits, error.localizedDescription))
        }
        let description = model.modelDescription
        guard description.inputDescriptionsByName[contract.input.name] != nil,
              description.outputDescriptionsByName[contract.output.name] != nil else {
            return .failure(.modelContractMismatch("the model has inputs \(Array(description.inputDescriptionsByName.keys)) " +
                "and outputs \(Array(description.outputDescriptionsByName.keys)); the contract names " +
                "\(contract.input.name) and \(contract.output.name)"))
        }
        return .success(Segmenter(contract: contract, computeUnits: computeUnits, model: model))
    }

    /// Queues one frame unless one is already running (live frames are dropped, never queued up).
    @discardableResult
    func segmentIfIdle(_ image: CIImage, orientation: CGImagePropertyOrientation, mode: FitMode,
                       completion: @escaping @Sendable (Result<SegmentationResult, SegmentationError>) -> Void) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if inFlight { return false }
        inFlight = true
        queue.async {
            let result = self.run(image, orientation: orientation, mode: mode)
            self.lock.lock()
            self.inFlight = false
            self.lock.unlock()
            completion(result)
        }
        return true
    }

    private func run(_ image: CIImage, orientation: CGImagePropertyOrientation, mode: FitMode)
        -> Result<SegmentationResult, SegmentationError> {
        let start = CACurrentMediaTime()
        let spec = contract.input
        let degrees = Geometry.exifToDegrees(Int(orientation.rawValue))
        let frame = SegKitCore.Size(Int(image.extent.width), Int(image.extent.height))
        let modelSize = SegKitCore.Size(spec.width, spec.height)
        let uprightSize = Geometry.uprightSize(frame, rotation: degrees)
        let fit = Geometry.fit(uprightSize, into: modelSize, mode: mode)

        // Core Image's y axis points up; a fit (uniform scale, centred) is the same either way.
        var upright = image.oriented(orientation)
        upright = upright.transformed(by: CGAffineTransform(translationX: -upright.extent.minX, y: -upright.extent.minY))
        let placed = upright.transformed(by: CGAffineTransform(
            a: CGFloat(fit.a), b: CGFloat(fit.c), c: CGFloat(fit.b), d: CGFloat(fit.d),
            tx: CGFloat(fit.tx), ty: CGFloat(fit.ty)))
        let bounds = CGRect(x: 0, y: 0, width: modelSize.width, height: modelSize.height)
        let pad = InputEncoder.paddingColor(spec.normalization ?? Normalization(inModel: true, pixelScale: 1, mean: [0, 0, 0], std: [1, 1, 1]))
        let background = CIImage(color: CIColor(red: CGFloat(pad.r) / 255, green: CGFloat(pad.g) / 255,
                                                blue: CGFloat(pad.b) / 255)).cropped(to: bounds)
        guard let pixels = modelBuffer(modelSize) else { return .failure(.inferenceFailed("no pixel buffer")) }
        context.render(placed.composited(over: background).cropped(to: bounds), to: pixels)

        do {
            let input: MLFeatureValue
            if spec.kind == "image" {
                input = MLFeatureValue(pixelBuffer: pixels)  // Core ML applies the ImageType's scale itself
            } else {
                let rgba = PixelBuffers.rgba(pixels)
                let floats = InputEncoder.encodeFloat(rgba, width: modelSize.width, height: modelSize.height, spec: spec)
                input = MLFeatureValue(multiArray: MLMultiArray(MLShapedArray<Float>(scalars: floats, shape: spec.shape)))
            }
            let preDone = CACurrentMediaTime()
            let provider = try MLDictionaryFeatureProvider(dictionary: [spec.name: input])
            let output = try model.prediction(from: provider)
            let inferDone = CACurrentMediaTime()
            guard let array = output.featureValue(for: contract.output.name)?.multiArrayValue else {
                return .failure(.modelContractMismatch("no multi-array output named \(contract.output.name)"))
            }
            let classMap: [Int]
            if contract.output.semantics == "class_map" {
                classMap = MLShapedArray<Int32>(converting: array).scalars.map(Int.init)
            } else {
                classMap = OutputDecoder.classMap(logits: MLShapedArray<Float>(converting: array).scalars, spec: contract.output)
            }
            let end = CACurrentMediaTime()
            return .success(SegmentationResult(
                classMap: classMap, model: modelSize, upright: uprightSize, mode: mode,
                frameToModel: fit.after(Geometry.rotation(frame, degrees: degrees)),
                timings: Timings(preMs: (preDone - start) * 1000, inferMs: (inferDone - preDone) * 1000,
                                 postMs: (end - inferDone) * 1000)))
        } catch {
            return .failure(computeUnits == .cpu ? .inferenceFailed(error.localizedDescription)
                                                 : .computeUnitsUnavailable(computeUnits, error.localizedDescription))
        }
    }

    private func modelBuffer(_ size: SegKitCore.Size) -> CVPixelBuffer? {
        if let buffer, CVPixelBufferGetWidth(buffer) == size.width, CVPixelBufferGetHeight(buffer) == size.height {
            return buffer
        }
        var created: CVPixelBuffer?
        let attributes = [kCVPixelBufferIOSurfacePropertiesKey: [:]] as CFDictionary
        CVPixelBufferCreate(kCFAllocatorDefault, size.width, size.height, kCVPixelFormatType_32BGRA, attributes, &created)
        buffer = created
        return created
    }
}
