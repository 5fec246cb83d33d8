package dev.segkit.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Test
import java.nio.ByteBuffer
import java.nio.ByteOrder

class TensorTest {
    private val imagenet = Normalization(false, 1.0 / 255, listOf(0.485, 0.456, 0.406), listOf(0.229, 0.224, 0.225))

    private fun input(layout: String, dtype: String, q: Quantization?, norm: Normalization = imagenet) =
        TensorSpec("image", if (layout == "NHWC") listOf(1, 1, 2, 3) else listOf(1, 3, 1, 2),
            layout, dtype, q, normalization = norm, kind = "tensor")

    @Test
    fun quantizationRoundsHalfToEvenAndClamps() {
        val q = Quantization(0.5, 0)
        assertEquals(2, InputEncoder.quantize(1.25f, q, "int8"))   // 2.5 -> 2
        assertEquals(4, InputEncoder.quantize(1.75f, q, "int8"))   // 3.5 -> 4
        assertEquals(-2, InputEncoder.quantize(-1.25f, q, "int8")) // -2.5 -> -2
        assertEquals(127, InputEncoder.quantize(1000f, q, "int8"))
        assertEquals(-128, InputEncoder.quantize(-1000f, q, "int8"))
        assertEquals(0, InputEncoder.quantize(-3f, Quantization(1.0, 0), "uint8"))
        assertEquals(13, InputEncoder.quantize(0f, Quantization(1.0, 13), "uint8"))
    }

    @Test
    fun normalizationFollowsTheContract() {
        assertEquals((255f * (1f / 255f) - 0.485f) / 0.229f, InputEncoder.normalize(255, 0, imagenet), 0f)
        assertEquals(7f, InputEncoder.normalize(7, 2, imagenet.copy(inModel = true)), 0f)
    }

    @Test
    fun nhwcAndNchwLayoutsPlaceChannelsAsDocumented() {
        val pixels = intArrayOf(Palette.argb(10, 20, 30), Palette.argb(40, 50, 60))
        val raw = Normalization(true, 1.0, listOf(0.0, 0.0, 0.0), listOf(1.0, 1.0, 1.0))
        val q = Quantization(1.0, 0)
        val nhwc = ByteBuffer.allocate(6)
        InputEncoder.encode(pixels, 2, 1, input("NHWC", "uint8", q, raw), nhwc)
        assertArrayEquals(byteArrayOf(10, 20, 30, 40, 50, 60), nhwc.array())
        val nchw = ByteBuffer.allocate(6)
        InputEncoder.encode(pixels, 2, 1, input("NCHW", "uint8", q, raw), nchw)
        assertArrayEquals(byteArrayOf(10, 40, 20, 50, 30, 60), nchw.array())
    }

    @Test
    fun float32InputsAreNormalizedFloatsInTheBufferByteOrder() {
        val out = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN)
        InputEncoder.encode(intArrayOf(Palette.argb(0, 128, 255), 0), 2, 1, input("NHWC", "float32", null), out)
        assertEquals(24, out.position())
        assertEquals(InputEncoder.normalize(0, 0, imagenet), out.getFloat(0), 0f)
        assertEquals(InputEncoder.normalize(128, 1, imagenet), out.getFloat(4), 0f)
        assertEquals(InputEncoder.normalize(255, 2, imagenet), out.getFloat(8), 0f)
    }

    @Test
    fun uint8PixelsGoStraightInWhenTheModelNormalizes() {
        val spec = input("NHWC", "uint8", null, imagenet.copy(inModel = true))
        val out = ByteBuffer.allocate(6)
        InputEncoder.encode(intArrayOf(Palette.argb(1, 2, 250), Palette.argb(255, 0, 9)), 2, 1, spec, out)
        assertArrayEquals(byteArrayOf(1, 2, 250.toByte(), 255.toByte(), 0, 9), out.array())
    }

    @Test
    fun letterboxPaddingIsTheTrainingMean() {
        assertEquals(Palette.argb(124, 116, 104), InputEncoder.paddingColor(imagenet))
        assertEquals(Palette.argb(0, 0, 0), InputEncoder.paddingColor(imagenet.copy(inModel = true)))
    }

    @Test(expected = IllegalArgumentException::class)
    fun aFrameOfTheWrongSizeIsRefused() {
        InputEncoder.encode(IntArray(4), 4, 1, input("NHWC", "int8", Quantization(1.0, 0)), ByteBuffer.allocate(12))
    }

    @Test
    fun dequantizeIsAffine() {
        assertEquals(-0.5f, OutputDecoder.dequantize(-3, Quantization(0.25, -1)), 0f)
        assertEquals(0f, OutputDecoder.dequantize(7, Quantization(0.1, 7)), 0f)
    }

    @Test
    fun argmaxTakesTheFirstMaximumLikeNumpy() {
        // 1 x 2 pixels x 3 classes, NHWC; pixel 0 ties classes 1 and 2, pixel 1 is all equal.
        val logits = floatArrayOf(0f, 5f, 5f, 1f, 1f, 1f)
        assertArrayEquals(intArrayOf(1, 0), OutputDecoder.argmaxNhwc(logits, 1, 2, 3))
        val spec = TensorSpec("logits", listOf(1, 1, 2, 3), "NHWC", "int8", Quantization(0.1, 0), semantics = "logits")
        val raw = ByteBuffer.wrap(byteArrayOf(0, 5, 5, 1, 1, 1))
        assertArrayEquals(intArrayOf(1, 0), OutputDecoder.classMap(raw, spec))
    }

    @Test
    fun int8ArgmaxComparesSignedAndUint8Unsigned() {
        val bytes = byteArrayOf(-1, 127, -128, 0)  // 0xFF, 0x7F, 0x80, 0x00
        val int8 = TensorSpec("l", listOf(1, 1, 1, 4), "NHWC", "int8", Quantization(1.0, 0), semantics = "logits")
        val uint8 = int8.copy(dtype = "uint8")
        assertArrayEquals(intArrayOf(1), OutputDecoder.classMap(ByteBuffer.wrap(bytes), int8))
        assertArrayEquals(intArrayOf(0), OutputDecoder.classMap(ByteBuffer.wrap(bytes), uint8))
    }

    @Test
    fun nchwLogitsAndClassMapOutputs() {
        val buffer = ByteBuffer.allocate(4 * 4).order(ByteOrder.nativeOrder())
        floatArrayOf(0f, 9f, 3f, 1f).forEach { buffer.putFloat(it) }   // classes 2 x pixels 2
        buffer.rewind()
        val nchw = TensorSpec("l", listOf(1, 2, 1, 2), "NCHW", "float32", null, semantics = "logits")
        assertArrayEquals(intArrayOf(1, 0), OutputDecoder.classMap(buffer, nchw))
        val map = ByteBuffer.allocate(8).order(ByteOrder.nativeOrder()).putInt(4).putInt(2)
        map.rewind()
        val classMap = TensorSpec("c", listOf(1, 1, 2), "NHW", "int32", null, semantics = "class_map")
        assertArrayEquals(intArrayOf(4, 2), OutputDecoder.classMap(map, classMap))
    }
}
