import Foundation

/// Everything that can go wrong in the demo, with the sentence the screen shows.
/// The segmenter returns these in `Result<…, SegmentationError>`; nothing is thrown at the UI.
public enum SegmentationError: Error, Equatable {
    case modelMissing(String)
    case contractMissing(String)
    case contractInvalid(String)
    case unsupportedSchema(found: Int, supported: Int)
    case unsupportedModel(String)
    case modelContractMismatch(String)
    case cameraPermissionDenied
    case cameraUnavailable(String)
    case computeUnitsUnavailable(ComputeUnits, String)
    case inferenceFailed(String)
    case imageUnreadable(String)

    public var title: String {
        switch self {
        case .modelMissing: return "Model not found"
        case .contractMissing: return "Model contract not found"
        case .contractInvalid: return "Model contract is invalid"
        case .unsupportedSchema: return "Unsupported model contract version"
        case .unsupportedModel: return "Model not supported by this app"
        case .modelContractMismatch: return "Model and contract do not match"
        case .cameraPermissionDenied: return "Camera permission denied"
        case .cameraUnavailable: return "Camera unavailable"
        case .computeUnitsUnavailable(let units, _): return "\(units.label) unavailable"
        case .inferenceFailed: return "Inference failed"
        case .imageUnreadable: return "Image cannot be read"
        }
    }

    public var message: String {
        switch self {
        case .modelMissing(let name):
            return "The model '\(name)' is not in the app bundle. Export a model, run " +
                "`make ios-assets` to copy the latest export into ios_demo/SegKitDemo/Model, and rebuild."
        case .contractMissing(let name):
            return "The model contract '\(name)' is missing from the app bundle. It is written " +
                "next to every exported model; `make ios-assets` copies both."
        case .contractInvalid(let detail):
            return "The bundled model contract cannot be used: \(detail)."
        case .unsupportedSchema(let found, let supported):
            let age = found > supported ? "newer" : "older"
            return "This app reads model contract version \(supported), but the bundled contract " +
                "is version \(found) (\(age)). Re-export the model with a segkit version that " +
                "writes version \(supported), or update the app."
        case .unsupportedModel(let detail):
            return "The bundled model cannot run in this app: \(detail)."
        case .modelContractMismatch(let detail):
            return "The model and its contract come from different exports (\(detail)). Copy both " +
                "from the same export with `make ios-assets`."
        case .cameraPermissionDenied:
            return "Camera access was denied. Enable it in Settings > SegKit Demo > Camera, or pick " +
                "a photo instead."
        case .cameraUnavailable(let detail):
            return "The camera could not be started (\(detail)). Pick a photo instead."
        case .computeUnitsUnavailable(let units, let detail):
            return "\(units.label) could not run this model (\(detail)); using \(ComputeUnits.cpu.label) instead."
        case .inferenceFailed(let detail):
            return "Segmentation failed: \(detail)."
        case .imageUnreadable(let detail):
            return "The selected image cannot be decoded (\(detail))."
        }
    }
}

extension SegmentationError: LocalizedError {
    public var errorDescription: String? { message }
}

/// Where Core ML may run the model (MLModelConfiguration.computeUnits in the app).
public enum ComputeUnits: String, CaseIterable, Equatable {
    case cpu, gpu, neuralEngine

    public var label: String {
        switch self {
        case .cpu: return "CPU"
        case .gpu: return "GPU"
        case .neuralEngine: return "Neural Engine"
        }
    }
}
