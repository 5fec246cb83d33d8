// What the iOS app expects from `python -m conversion.export --target coreml`, in one place.
//
// tests/test_app_contract.py reads the `static let` lines of this file and compares them with
// conversion/contract.py and conversion/coreml_export.py; conversion/apps.py
// reads the file names from here. Keep each value a single-line literal without a comment.

public enum AppContract {
    /// The model-contract schema this app reads (conversion.contract.SCHEMA_VERSION).
    public static let supportedSchemaVersion = 1

    /// The fp16 ML program; Xcode compiles it into `<name>.mlmodelc` inside the app bundle.
    public static let modelPackage = "deeplabv3lite_mobilenetv2_fp16.mlpackage"
    public static let modelResource = "deeplabv3lite_mobilenetv2_fp16"

    /// The contract sits next to its artifact as `<artifact file>.json`.
    public static let contractSuffix = ".json"
    public static let contractResource = "deeplabv3lite_mobilenetv2_fp16.mlpackage.json"

    /// Core ML takes the image itself (ImageType, scale 1/255) or an NCHW float tensor.
    public static let inputLayouts = "NCHW"
    public static let inputKinds = "image,tensor"
    public static let inputDtypes = "uint8,float32"
    public static let outputLayouts = "NCHW,NHW"
    public static let outputDtypes = "float16,float32,int32"

    static func list(_ csv: String) -> [String] { csv.split(separator: ",").map(String.init) }
}
