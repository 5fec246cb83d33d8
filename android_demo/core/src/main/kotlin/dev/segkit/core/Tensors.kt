package dev.segkit.core

import java.nio.ByteBuffer

/**
 * Frames in, class maps out, exactly as conversion/contract.py's `prepare_input` and
 * `read_output` do it (float32 arithmetic, round half to even), so the app's tensors are
 * bit-identical to the ones the exporter's parity check fed the model.
 */
object InputEncoder {
    private val RANGES = mapOf("int8" to (-128 to 127), "uint8" to (0 to 255))

    fun bytesPerElement(dtype: String): Int = when (dtype) {
        "int8", "uint8" -> 1
        "int16", "float16" -> 2
        "float32", "int32" -> 4
        "int64" -> 8
        else -> throw IllegalArgumentException("unknown dtype $dtype")
    }

    fun byteSize(spec: TensorSpec): Int = spec.elementCount * bytesPerElement(spec.dtype)

    /** One pixel value (0..255) of channel `c` as the float the model (or quantizer) sees. */
    fun normalize(pixel: Int, channel: Int, norm: Normalization): Float {
        val x = pixel.toFloat()
        if (norm.inModel) return x
        return (x * norm.pixelScale.toFloat() - norm.mean[channel].toFloat()) /
            norm.std[channel].toFloat()
    }

    /**
     * The colour letterbox padding is filled with: the training mean (normalised to zero, so
     * padding looks like "nothing" to the model), or black when the model normalises itself.
     */
    fun paddingColor(norm: Normalization): Int {
        if (norm.inModel) return Palette.argb(0, 0, 0)
        val c = IntArray(3) { Math.round(norm.mean[it] / norm.pixelScale).toInt().coerceIn(0, 255) }
        return Palette.argb(c[0], c[1], c[2])
    }

    /** q = clamp(round_half_even(x / scale) + zero_point) in the dtype's range. */
    fun quantize(x: Float, q: Quantization, dtype: String): Int {
        val range = RANGES[dtype] ?: throw IllegalArgumentException("cannot quantize to $dtype")
        val scaled = x / q.scale.toFloat()
        val rounded = Math.rint(scaled.toDouble()).toFloat() + q.zeroPoint.toFloat()
        return maxOf(range.first.toFloat(), minOf(range.second.toFloat(), rounded)).toInt()
    }

    /**
     * The 3 x 256 values a pixel can become, per channel: a frame is then one table look-up
     * per sample. Quantized dtypes give the stored integer, float32 the float bits.
     */
    fun lookupTable(spec: TensorSpec): Array<IntArray> {
        val norm = spec.normalization ?: throw IllegalArgumentException("${spec.name} is not an input")
        val q = spec.quantization
        return Array(3) { c ->
            IntArray(256) { p ->
                val x = normalize(p, c, norm)
                when {
                    q != null -> quantize(x, q, spec.dtype)
                    spec.dtype == "float32" -> java.lang.Float.floatToRawIntBits(x)
                    spec.dtype == "uint8" && norm.inModel -> p
                    else -> throw IllegalArgumentException(
                        "a ${spec.dtype} input needs quantization parameters")
                }
            }
        }
    }

    /**
     * Write an ARGB frame (already `spec.width` x `spec.height`, row-major) into `out` in the
     * spec's layout (NHWC or NCHW) and dtype. `out` keeps its byte order (use native order for
     * float32 on device) and ends positioned after the tensor.
     */
    fun encode(argb: IntArray, width: Int, height: Int, spec: TensorSpec, out: ByteBuffer,
               table: Array<IntArray> = lookupTable(spec)) {
        require(width == spec.width && height == spec.height) {
            "frame is ${width}x$height, the model takes ${spec.width}x${spec.height}"
        }
        require(argb.size >= width * height) { "pixel array too small" }
        require(out.remaining() >= byteSize(spec)) { "buffer too small for ${spec.name}" }
        val float = spec.dtype == "float32"
        val pixels = width * height
        val planar = spec.layout == "NCHW"
        val start = out.position()
        for (i in 0 until pixels) {
            val color = argb[i]
            for (c in 0 until 3) {
                val value = table[c][(color shr (16 - 8 * c)) and 0xFF]
                val index = if (planar) c * pixels + i else i * 3 + c
                if (float) out.putInt(start + index * 4, value)
                else out.put(start + index, value.toByte())
            }
        }
        out.position(start + byteSize(spec))
    }
}

object OutputDecoder {
    /** (q - zero_point) * scale, in float32 like numpy. */
    fun dequantize(q: Int, quant: Quantization): Float =
        (q - quant.zeroPoint).toFloat() * quant.scale.toFloat()

    /** Read element `index` of a raw tensor as a float, dequantizing when quantized. */
    fun valueAt(raw: ByteBuffer, index: Int, spec: TensorSpec): Float {
        val base = raw.position()
        val q = spec.quantization
        val stored: Float = when (spec.dtype) {
            "int8" -> raw.get(base + index).toFloat()
            "uint8" -> (raw.get(base + index).toInt() and 0xFF).toFloat()
            "float32" -> raw.getFloat(base + index * 4)
            else -> throw IllegalArgumentException("no logits of dtype ${spec.dtype}")
        }
        return if (q != null) dequantize(stored.toInt(), q) else stored
    }

    /** Dequantized logits in the output's own layout. */
    fun logits(raw: ByteBuffer, spec: TensorSpec): FloatArray =
        FloatArray(spec.elementCount) { valueAt(raw, it, spec) }

    /**
     * The class map (row-major H x W, one class index per pixel) from the raw output buffer:
     * argmax over the class axis for logits (first maximum wins, as numpy), or the values
     * themselves for a class-map output.
     */
    fun classMap(raw: ByteBuffer, spec: TensorSpec): IntArray {
        if (spec.semantics == "class_map") return readClassMap(raw, spec)
        return when (spec.dtype) {
            "int8", "uint8" -> argmaxQuantized(raw, spec)
            else -> {
                val values = logits(raw, spec)
                if (spec.layout == "NCHW") argmaxNchw(values, spec.channels, spec.height, spec.width)
                else argmaxNhwc(values, spec.height, spec.width, spec.channels)
            }
        }
    }

    /**
     * Argmax straight on the stored integers. Dequantization is strictly increasing (scale > 0),
     * so it cannot change which class wins, and this skips a float per logit.
     */
    fun argmaxQuantized(raw: ByteBuffer, spec: TensorSpec): IntArray {
        val unsigned = spec.dtype == "uint8"
        val base = raw.position()
        val h = spec.height
        val w = spec.width
        val c = spec.channels
        val nchw = spec.layout == "NCHW"
        val plane = h * w
        return IntArray(plane) { p ->
            var best = 0
            var bestValue = Int.MIN_VALUE
            for (k in 0 until c) {
                val b = raw.get(base + if (nchw) k * plane + p else p * c + k).toInt()
                val v = if (unsigned) b and 0xFF else b
                if (v > bestValue) {
                    bestValue = v
                    best = k
                }
            }
            best
        }
    }

    fun argmaxNhwc(logits: FloatArray, height: Int, width: Int, classes: Int): IntArray =
        IntArray(height * width) { p ->
            var best = 0
            for (k in 1 until classes) if (logits[p * classes + k] > logits[p * classes + best]) best = k
            best
        }

    fun argmaxNchw(logits: FloatArray, classes: Int, height: Int, width: Int): IntArray {
        val plane = height * width
        return IntArray(plane) { p ->
            var best = 0
            for (k in 1 until classes) if (logits[k * plane + p] > logits[best * plane + p]) best = k
            best
        }
    }

    private fun readClassMap(raw: ByteBuffer, spec: TensorSpec): IntArray {
        val base = raw.position()
        val plane = spec.shape[spec.shape.size - 2] * spec.shape[spec.shape.size - 1]
        return IntArray(plane) {
            when (spec.dtype) {
                "int32" -> raw.getInt(base + it * 4)
                "int64" -> raw.getLong(base + it * 8).toInt()
                "uint8" -> raw.get(base + it).toInt() and 0xFF
                "int8" -> raw.get(base + it).toInt()
                else -> throw IllegalArgumentException("no class map of dtype ${spec.dtype}")
            }
        }
    }
}
