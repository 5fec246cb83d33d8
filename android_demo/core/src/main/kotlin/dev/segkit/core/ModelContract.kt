package dev.segkit.core

/**
 * The model contract written by conversion.export next to every artifact (see
 * conversion/contract.py for the schema). The app reads only what it needs to prepare frames
 * and read outputs; the schema version is checked first so an incompatible contract gets a
 * clear message instead of a confusing field error.
 */
data class Quantization(val scale: Double, val zeroPoint: Int)

data class Normalization(
    val inModel: Boolean,
    val pixelScale: Double,
    val mean: List<Double>,
    val std: List<Double>
)

data class TensorSpec(
    val name: String,
    val shape: List<Int>,
    val layout: String,
    val dtype: String,
    val quantization: Quantization?,
    /** Input only: how pixels become model input (null for outputs). */
    val normalization: Normalization? = null,
    /** Output only: "logits" or "class_map" (null for inputs). */
    val semantics: String? = null,
    /** Input only: "tensor" or "image" (CoreML image inputs). */
    val kind: String? = null
) {
    fun dim(axis: Char): Int {
        val index = layout.indexOf(axis)
        require(index >= 0) { "layout $layout has no axis $axis" }
        return shape[index]
    }

    val height: Int get() = dim('H')
    val width: Int get() = dim('W')
    val channels: Int get() = if (layout.indexOf('C') >= 0) dim('C') else 1
    val elementCount: Int get() = shape.fold(1) { acc, v -> acc * v }
}

data class ClassInfo(
    val names: List<String>,
    /** Opaque ARGB colours, one per class. */
    val palette: List<Int>,
    val ignoreIndex: Int
) {
    val count: Int get() = names.size
}

data class ArtifactInfo(
    val file: String,
    val target: String,
    val precision: String,
    val sizeBytes: Long,
    val sha256: String
)

data class ModelContract(
    val schemaVersion: Int,
    val artifact: ArtifactInfo,
    val input: TensorSpec,
    val output: TensorSpec,
    val classes: ClassInfo,
    /** Ops the exporter found that a phone's GPU delegate cannot take (export.gpu_delegate). */
    val gpuUnsupportedOps: List<String> = emptyList()
) {
    companion object {
        /** Parse and check a contract; throws ProblemException with a user-facing Problem. */
        fun parse(text: String, supportedVersion: Int = AppContract.SUPPORTED_SCHEMA_VERSION):
            ModelContract {
            val root = try {
                Json.parse(text)
            } catch (e: JsonException) {
                throw ProblemException(Problem.ContractUnreadable("not valid JSON: ${e.message}"))
            }
            val doc = Fields(root, "contract")
            val version = doc.optional("schema_version")
                ?: throw unreadable("it has no schema_version, so it is not a segkit model contract")
            val number = (version as? Long)?.toInt()
                ?: throw unreadable("schema_version must be an integer, got $version")
            if (number != supportedVersion) {
                throw ProblemException(Problem.UnsupportedSchema(number, supportedVersion))
            }
            val contract = ModelContract(
                number,
                artifact(doc.obj("artifact")),
                input(doc.obj("input")),
                output(doc.obj("output")),
                classes(doc.obj("classes")),
                gpuUnsupportedOps(doc)
            )
            val problems = consistency(contract)
            if (problems.isNotEmpty()) throw unreadable(problems.joinToString("; "))
            return contract
        }

        private fun unreadable(detail: String) =
            ProblemException(Problem.ContractUnreadable(detail))

        /** Optional: contracts written before the GPU report have none, and read as none. */
        private fun gpuUnsupportedOps(doc: Fields): List<String> {
            val report = doc.optionalObj("export")?.optionalObj("gpu_delegate") ?: return emptyList()
            return report.list("unsupported_ops").map {
                it as? String ?: throw unreadable("export.gpu_delegate.unsupported_ops must hold names")
            }
        }

        private fun artifact(f: Fields) = ArtifactInfo(
            f.string("file"), f.string("target"), f.string("precision"),
            f.long("size_bytes"), f.string("sha256")
        )

        private fun quantization(f: Fields): Quantization? {
            val q = f.optionalObj("quantization") ?: return null
            return Quantization(q.double("scale"), q.long("zero_point").toInt())
        }

        private fun input(f: Fields): TensorSpec {
            val norm = f.obj("normalization")
            return TensorSpec(
                f.string("name"), f.ints("shape"), f.string("layout"), f.string("dtype"),
                quantization(f),
                normalization = Normalization(
                    norm.boolean("in_model"), norm.double("pixel_scale"),
                    norm.doubles("mean", 3), norm.doubles("std", 3)
                ),
                kind = f.string("kind")
            )
        }

        private fun output(f: Fields) = TensorSpec(
            f.string("name"), f.ints("shape"), f.string("layout"), f.string("dtype"),
            quantization(f), semantics = f.string("semantics")
        )

        private fun classes(f: Fields): ClassInfo {
            val names = f.list("names").mapIndexed { i, v ->
                v as? String ?: throw unreadable("classes.names[$i] is not a string")
            }
            val palette = f.list("palette").mapIndexed { i, v ->
                val rgb = Fields(v, "classes.palette[$i]").asInts(3)
                if (rgb.any { it < 0 || it > 255 }) throw unreadable("classes.palette[$i] is not 0..255")
                Palette.argb(rgb[0], rgb[1], rgb[2])
            }
            val count = f.long("num_classes").toInt()
            if (names.size != count || palette.size != count) {
                throw unreadable("classes: $count classes but ${names.size} names and " +
                    "${palette.size} colours")
            }
            return ClassInfo(names, palette, f.long("ignore_index").toInt())
        }

        /** Rules across fields (the same ones conversion/contract.py enforces). */
        private fun consistency(c: ModelContract): List<String> {
            val problems = ArrayList<String>()
            val input = c.input
            if (input.shape.size != 4 || input.layout.length != 4 || input.channels != 3) {
                problems.add("input shape ${input.shape} is not a 4-D ${input.layout} RGB tensor")
            }
            val output = c.output
            if (output.semantics == "class_map") {
                if (output.layout != "NHW" || output.shape.size != 3) {
                    problems.add("a class-map output must be 3-D NHW, got ${output.layout}")
                }
            } else if (output.semantics == "logits") {
                if (output.shape.size != 4 || output.layout.indexOf('C') < 0 ||
                    output.layout.length != 4 || output.channels != c.classes.count) {
                    problems.add("logits ${output.shape} (${output.layout}) have no axis of " +
                        "${c.classes.count} classes")
                }
            } else {
                problems.add("output semantics '${output.semantics}' is neither logits nor class_map")
            }
            for (spec in listOf(input, output)) {
                val q = spec.quantization
                if (q != null && !(q.scale > 0.0)) problems.add("${spec.name}: scale must be > 0")
            }
            return problems
        }
    }
}

/** What this app can run: layouts and dtypes from AppContract. Null when supported. */
fun unsupportedReason(c: ModelContract): String? {
    val input = c.input
    val output = c.output
    return when {
        input.kind != "tensor" -> "input kind '${input.kind}' (this app feeds tensors)"
        input.layout != AppContract.INPUT_LAYOUT ->
            "input layout ${input.layout} (LiteRT models take ${AppContract.INPUT_LAYOUT})"
        input.dtype !in AppContract.inputDtypes ->
            "input dtype ${input.dtype} (supported: ${AppContract.INPUT_DTYPES})"
        input.quantization == null && input.dtype != "float32" &&
            !(input.dtype == "uint8" && input.normalization?.inModel == true) ->
            "a ${input.dtype} input without quantization parameters"
        output.layout !in AppContract.outputLayouts ->
            "output layout ${output.layout} (supported: ${AppContract.OUTPUT_LAYOUTS})"
        output.dtype !in AppContract.outputDtypes ->
            "output dtype ${output.dtype} (supported: ${AppContract.OUTPUT_DTYPES})"
        else -> null
    }
}

/** Typed access to a parsed JSON object, with the field path in every error. */
internal class Fields(private val value: Any?, private val path: String) {
    private val map: Map<*, *>
        get() = value as? Map<*, *>
            ?: throw ProblemException(Problem.ContractUnreadable("$path is not an object"))

    private fun fail(key: String, what: String): Nothing =
        throw ProblemException(Problem.ContractUnreadable("$path.$key $what"))

    fun optional(key: String): Any? = map[key]

    private fun required(key: String): Any =
        map[key] ?: fail(key, if (map.containsKey(key)) "is null" else "is missing")

    fun obj(key: String) = Fields(required(key).also {
        if (it !is Map<*, *>) fail(key, "is not an object")
    }, "$path.$key")

    fun optionalObj(key: String): Fields? {
        val v = map[key] ?: return null
        if (v !is Map<*, *>) fail(key, "is not an object or null")
        return Fields(v, "$path.$key")
    }

    fun string(key: String): String = required(key) as? String ?: fail(key, "is not a string")

    fun boolean(key: String): Boolean = required(key) as? Boolean ?: fail(key, "is not true/false")

    fun long(key: String): Long = required(key) as? Long ?: fail(key, "is not an integer")

    fun double(key: String): Double =
        (required(key) as? Number)?.toDouble() ?: fail(key, "is not a number")

    fun list(key: String): List<*> = required(key) as? List<*> ?: fail(key, "is not an array")

    fun ints(key: String): List<Int> = list(key).map {
        (it as? Long)?.toInt() ?: fail(key, "must hold integers")
    }

    fun doubles(key: String, size: Int): List<Double> {
        val items = list(key).map { (it as? Number)?.toDouble() ?: fail(key, "must hold numbers") }
        if (items.size != size) fail(key, "must hold $size numbers")
        return items
    }

    fun asInts(size: Int): List<Int> {
        val items = value as? List<*>
            ?: throw ProblemException(Problem.ContractUnreadable("$path is not an array"))
        val ints = items.map {
            (it as? Long)?.toInt()
                ?: throw ProblemException(Problem.ContractUnreadable("$path must hold integers"))
        }
        if (ints.size != size) {
            throw ProblemException(Problem.ContractUnreadable("$path must hold $size integers"))
        }
        return ints
    }
}
