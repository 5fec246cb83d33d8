package dev.segkit.core

/**
 * What the Android app expects from `python -m conversion.export`, in one place.
 *
 * tests/test_app_contract.py reads the `const val` lines of this file and compares them with
 * conversion/contract.py and with a real export, and conversion/apps.py reads
 * the asset names from here. Keep each value a single-line literal so both can parse it.
 */
object AppContract {
    /** The model-contract schema this app reads (conversion.contract.SCHEMA_VERSION). */
    const val SUPPORTED_SCHEMA_VERSION = 1

    /** The full-integer export: `<arch>_int8.tflite`, the fastest variant on phone CPUs. */
    const val MODEL_ASSET = "deeplabv3lite_mobilenetv2_int8.tflite"

    /** The contract sits next to its artifact as `<artifact file>.json`. */
    const val CONTRACT_SUFFIX = ".json"
    const val CONTRACT_ASSET = "deeplabv3lite_mobilenetv2_int8.tflite.json"

    /** LiteRT tensors are channel-last. */
    const val INPUT_LAYOUT = "NHWC"
    const val INPUT_DTYPES = "int8,uint8,float32"
    const val OUTPUT_LAYOUTS = "NHWC,NHW"
    const val OUTPUT_DTYPES = "int8,uint8,float32,int32,int64"

    val inputDtypes: List<String> = INPUT_DTYPES.split(",")
    val outputLayouts: List<String> = OUTPUT_LAYOUTS.split(",")
    val outputDtypes: List<String> = OUTPUT_DTYPES.split(",")
}
