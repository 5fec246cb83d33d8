import Foundation

/// The model contract written by conversion.export next to every artifact (schema:
/// conversion/contract.py). The version is checked before anything else is decoded, so a
/// contract from another schema gets a clear message instead of a field error.
public struct Quantization: Codable, Equatable {
    public let scale: Double
    public let zeroPoint: Int

    public init(scale: Double, zeroPoint: Int) {
        self.scale = scale
        self.zeroPoint = zeroPoint
    }
}

public struct Normalization: Codable, Equatable {
    public let inModel: Bool
    public let pixelScale: Double
    public let mean: [Double]
    public let std: [Double]

    public init(inModel: Bool, pixelScale: Double, mean: [Double], std: [Double]) {
        self.inModel = inModel
        self.pixelScale = pixelScale
        self.mean = mean
        self.std = std
    }
}

public struct ImagePreprocessing: Codable, Equatable {
    public let scale: Double
    public let bias: [Double]
}

public struct TensorSpec: Codable, Equatable {
    public let name: String
    public let shape: [Int]
    public let layout: String
    public let dtype: String
    public let quantization: Quantization?
    /// Inputs only.
    public let normalization: Normalization?
    public let kind: String?
    public let imagePreprocessing: ImagePreprocessing?
    /// Outputs only: "logits" or "class_map".
    public let semantics: String?

    public init(name: String, shape: [Int], layout: String, dtype: String,
                quantization: Quantization? = nil, normalization: Normalization? = nil,
                kind: String? = nil, imagePreprocessing: ImagePreprocessing? = nil,
                semantics: String? = nil) {
        self.name = name
        self.shape = shape
        self.layout = layout
        self.dtype = dtype
        self.quantization = quantization
        self.normalization = normalization
        self.kind = kind
        self.imagePreprocessing = imagePreprocessing
        self.semantics = semantics
    }

    public func dim(_ axis: Character) -> Int {
        guard let index = layout.firstIndex(of: axis) else { return 1 }
        return shape[layout.distance(from: layout.startIndex, to: index)]
    }

    public var height: Int { dim("H") }
    public var width: Int { dim("W") }
    public var channels: Int { layout.contains("C") ? dim("C") : 1 }
    public var elementCount: Int { shape.reduce(1, *) }
}

public struct ArtifactInfo: Codable, Equatable {
    public let file: String
    public let target: String
    public let precision: String
    public let sizeBytes: Int
    public let sha256: String
}

public struct ClassInfo: Codable, Equatable {
    public let numClasses: Int
    public let names: [String]
    /// [r, g, b] per class.
    public let palette: [[Int]]
    public let ignoreIndex: Int

    public init(numClasses: Int, names: [String], palette: [[Int]], ignoreIndex: Int) {
        self.numClasses = numClasses
        self.names = names
        self.palette = palette
        self.ignoreIndex = ignoreIndex
    }

    /// Opaque RGBA colours, one per class.
    public var colors: [RGBA] { palette.map { RGBA(r: UInt8($0[0]), g: UInt8($0[1]), b: UInt8($0[2]), a: 255) } }
}

public struct ModelContract: Codable, Equatable {
    public let schemaVersion: Int
    public let artifact: ArtifactInfo
    public let input: TensorSpec
    public let output: TensorSpec
    public let classes: ClassInfo

    private struct VersionProbe: Decodable {
        let schemaVersion: Int?
    }

    private static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }

    /// Parses and checks a contract; the error says what the screen should show.
    public static func parse(_ data: Data,
                             supportedVersion: Int = AppContract.supportedSchemaVersion)
        -> Result<ModelContract, SegmentationError> {
        let probe: VersionProbe
        do {
            probe = try decoder().decode(VersionProbe.self, from: data)
        } catch {
            return .failure(.contractInvalid("not valid JSON or not an object (\(describe(error)))"))
        }
        guard let version = probe.schemaVersion else {
            return .failure(.contractInvalid("it has no schema_version, so it is not a segkit model contract"))
        }
        guard version == supportedVersion else {
            return .failure(.unsupportedSchema(found: version, supported: supportedVersion))
        }
        let contract: ModelContract
        do {
            contract = try decoder().decode(ModelContract.self, from: data)
        } catch {
            return .failure(.contractInvalid(describe(error)))
        }
        let problems = contract.consistencyProblems()
        if !problems.isEmpty { return .failure(.contractInvalid(problems.joined(separator: "; "))) }
        return .success(contract)
    }

    /// The same cross-field rules conversion/contract.py enforces.
    func consistencyProblems() -> [String] {
        var problems: [String] = []
        if classes.names.count != classes.numClasses || classes.palette.count != classes.numClasses {
            problems.append("classes: \(classes.numClasses) classes but \(classes.names.count) names and \(classes.palette.count) colours")
        }
        if classes.palette.contains(where: { $0.count != 3 || $0.contains(where: { $0 < 0 || $0 > 255 }) }) {
            problems.append("classes.palette holds something other than 0..255 RGB triples")
        }
        if input.shape.count != 4 || input.layout.count != 4 || input.channels != 3 {
            problems.append("input shape \(input.shape) is not a 4-D \(input.layout) RGB tensor")
        }
        switch output.semantics {
        case "class_map":
            if output.layout != "NHW" || output.shape.count != 3 {
                problems.append("a class-map output must be 3-D NHW, got \(output.layout)")
            }
        case "logits":
            if output.shape.count != 4 || !output.layout.contains("C") || output.channels != classes.numClasses {
                problems.append("logits \(output.shape) (\(output.layout)) have no axis of \(classes.numClasses) classes")
            }
        default:
            problems.append("output semantics '\(output.semantics ?? "null")' is neither logits nor class_map")
        }
        return problems
    }

    /// What the iOS app cannot run (AppContract's layouts and dtypes); nil when supported.
    public var unsupportedReason: String? {
        let kinds = AppContract.list(AppContract.inputKinds)
        if !kinds.contains(input.kind ?? "") { return "input kind '\(input.kind ?? "null")'" }
        if !AppContract.list(AppContract.inputLayouts).contains(input.layout) {
            return "input layout \(input.layout) (Core ML models take \(AppContract.inputLayouts))"
        }
        if !AppContract.list(AppContract.inputDtypes).contains(input.dtype) {
            return "input dtype \(input.dtype) (supported: \(AppContract.inputDtypes))"
        }
        if !AppContract.list(AppContract.outputLayouts).contains(output.layout) {
            return "output layout \(output.layout) (supported: \(AppContract.outputLayouts))"
        }
        if !AppContract.list(AppContract.outputDtypes).contains(output.dtype) {
            return "output dtype \(output.dtype) (supported: \(AppContract.outputDtypes))"
        }
        return nil
    }

    private static func describe(_ error: Error) -> String {
        func path(_ keys: [CodingKey]) -> String {
            (["contract"] + keys.map { (key: CodingKey) -> String in
                if let index = key.intValue { return "[\(index)]" }
                return key.stringValue
            })
                .joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        guard let decoding = error as? DecodingError else { return error.localizedDescription }
        switch decoding {
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath + [key])) is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "\(path(context.codingPath)) has the wrong type"
        case .dataCorrupted(let context):
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(decoding)"
        }
    }
}
