package dev.segkit.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import java.nio.ByteBuffer

/**
 * The acceptance check: from the golden frame and the raw int8 output of a real exported
 * model, the core reproduces the model input and the expected class map exactly.
 */
class GoldenTest {
    private val contract = Golden.contract
    private val expected = Golden.expectedClasses()

    @Test
    fun goldenContractIsTheFullInt8Export() {
        assertEquals(AppContract.SUPPORTED_SCHEMA_VERSION, contract.schemaVersion)
        assertEquals(AppContract.MODEL_ASSET, contract.artifact.file)
        assertEquals("NHWC", contract.input.layout)
        assertEquals("int8", contract.input.dtype)
        assertEquals("int8", contract.output.dtype)
        assertEquals("logits", contract.output.semantics)
        assertTrue(contract.input.quantization != null && contract.output.quantization != null)
        assertEquals(null, unsupportedReason(contract))
    }

    @Test
    fun preprocessingReproducesTheInt8InputTensorExactly() {
        val spec = contract.input
        val out = ByteBuffer.allocate(InputEncoder.byteSize(spec))
        InputEncoder.encode(Golden.frameArgb(), spec.width, spec.height, spec, out)
        val want = Golden.bytes("input_tensor.bin")
        assertEquals(want.size, out.position())
        assertArrayEquals(want, out.array())
    }

    @Test
    fun classMapFromRawInt8OutputMatchesExactly() {
        val classes = OutputDecoder.classMap(Golden.rawOutput(), contract.output)
        assertArrayEquals(expected, classes)
    }

    @Test
    fun dequantizedArgmaxAgreesInBothLayouts() {
        val spec = contract.output
        val nhwc = OutputDecoder.logits(Golden.rawOutput(), spec)
        val h = spec.height
        val w = spec.width
        val c = spec.channels
        assertArrayEquals(expected, OutputDecoder.argmaxNhwc(nhwc, h, w, c))
        val nchw = FloatArray(nhwc.size)
        for (p in 0 until h * w) for (k in 0 until c) nchw[k * h * w + p] = nhwc[p * c + k]
        assertArrayEquals(expected, OutputDecoder.argmaxNchw(nchw, c, h, w))
    }

    @Test
    fun dequantizationMatchesPythonBitForBit() {
        val spec = contract.output
        val logits = OutputDecoder.logits(Golden.rawOutput(), spec)
        val samples = Golden.meta["dequantized_samples"] as List<*>
        for (sample in samples) {
            val s = sample as Map<*, *>
            val y = (s["y"] as Long).toInt()
            val x = (s["x"] as Long).toInt()
            val want = (s["logits"] as List<*>).map { (it as Number).toDouble().toFloat() }
            val got = (0 until spec.channels).map { logits[(y * spec.width + x) * spec.channels + it] }
            assertEquals("logits at ($y, $x)", want, got)
        }
    }

    @Test
    fun theGoldenFrameShowsAtLeastThreeClassesAndTheLegendCountsThem() {
        val present = Golden.meta["classes_present"] as Map<*, *>
        assertTrue("only ${present.size} classes", present.size >= 3)
        val legend = Overlay.legend(contract.classes, expected)
        for (entry in legend) {
            val count = (present[entry.name] as Long?)?.toInt() ?: 0
            assertEquals(entry.name, count.toFloat() / expected.size, entry.fraction, 1e-6f)
        }
        assertEquals(contract.classes.count, legend.size)
    }

    @Test
    fun paletteColouringUsesTheContractColours() {
        val colours = Overlay.colorize(expected, contract.classes.palette, 1f)
        for (i in expected.indices step 97) {
            assertEquals(contract.classes.palette[expected[i]], colours[i])
        }
    }
}
