package dev.segkit.core

import java.nio.ByteBuffer

/** The golden vectors written by android_demo/tools/make_golden.py (test resources). */
object Golden {
    fun bytes(name: String): ByteArray {
        val stream = Golden::class.java.getResourceAsStream("/golden/$name")
            ?: throw IllegalStateException("golden/$name is not on the test classpath; " +
                "regenerate with android_demo/tools/make_golden.py")
        return stream.use { it.readBytes() }
    }

    fun text(name: String) = String(bytes(name), Charsets.UTF_8)

    val contractText: String by lazy { text("contract.json") }
    val contract: ModelContract by lazy { ModelContract.parse(contractText) }

    @Suppress("UNCHECKED_CAST")
    val meta: Map<String, Any?> by lazy { Json.parse(text("golden.json")) as Map<String, Any?> }

    /** The frame as packed ARGB pixels, the form Android's Bitmap.getPixels gives. */
    fun frameArgb(): IntArray {
        val rgb = bytes("input_rgb.u8")
        return IntArray(rgb.size / 3) { i ->
            Palette.argb(rgb[3 * i].toInt() and 0xFF, rgb[3 * i + 1].toInt() and 0xFF,
                rgb[3 * i + 2].toInt() and 0xFF)
        }
    }

    fun expectedClasses(): IntArray = bytes("expected_classes.u8").map { it.toInt() and 0xFF }.toIntArray()

    fun rawOutput(): ByteBuffer = ByteBuffer.wrap(bytes("output_raw.bin"))
}

/** A contract text with one field replaced, for the error tests. */
fun contractWith(old: String, new: String): String {
    val text = Golden.contractText
    check(text.contains(old)) { "golden contract has no '$old'" }
    return text.replaceFirst(old, new)
}
