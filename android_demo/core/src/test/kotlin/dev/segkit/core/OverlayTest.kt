package dev.segkit.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Test

class OverlayTest {
    private val red = Palette.argb(255, 0, 0)
    private val blue = Palette.argb(0, 0, 255)

    @Test
    fun packsAndPrintsColours() {
        val c = Palette.argb(18, 52, 86, 120)
        assertEquals(listOf(120, 18, 52, 86), listOf(Palette.alpha(c), Palette.red(c), Palette.green(c), Palette.blue(c)))
        assertEquals("#123456", Palette.hex(c))
    }

    @Test
    fun colorizeAppliesOpacityAndLeavesUnknownClassesTransparent() {
        val out = Overlay.colorize(intArrayOf(0, 1, 255, -1), listOf(red, blue), 0.5f)
        assertEquals(Palette.argb(255, 0, 0, 128), out[0])
        assertEquals(Palette.argb(0, 0, 255, 128), out[1])
        assertEquals(0, out[2])
        assertEquals(0, out[3])
        assertEquals(255, Palette.alpha(Overlay.colorize(intArrayOf(0), listOf(red), 7f)[0]))
    }

    @Test
    fun blendIsSourceOverWithRounding() {
        val grey = Palette.argb(100, 100, 100)
        assertEquals(grey, Overlay.blend(grey, 0))
        assertEquals(red, Overlay.blend(grey, red))
        // 100 * (1 - 128/255) + 255 * 128/255 = 177.8 -> 178; 100 * 127/255 = 49.8 -> 50
        assertEquals(Palette.argb(178, 50, 50), Overlay.blend(grey, Palette.argb(255, 0, 0, 128)))
    }

    @Test
    fun composeLooksUpTheModelPixelUnderEachPhotoPixel() {
        // A 4 x 2 photo letterboxed into a 4 x 4 model: rows 1..2 of the model hold the photo.
        val photo = IntArray(8) { Palette.argb(0, 0, 0) }
        val model = Size(4, 4)
        val classMap = intArrayOf(1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1)
        val t = Geometry.frameToModel(Size(4, 2), 0, model, FitMode.LETTERBOX)
        val out = Overlay.compose(photo, Size(4, 2), classMap, model, t, listOf(red, blue), 1f)
        assertArrayEquals(intArrayOf(red, red, blue, blue, blue, blue, red, red), out)
        val half = Overlay.compose(photo, Size(4, 2), classMap, model, t, listOf(red, blue), 0f)
        assertArrayEquals(photo, half)
    }

    @Test
    fun legendListsEveryClassWithItsShare() {
        val classes = ClassInfo(listOf("road", "car", "sky"), listOf(red, blue, red), 255)
        val legend = Overlay.legend(classes, intArrayOf(0, 0, 1, 255))
        assertEquals(listOf("road", "car", "sky"), legend.map { it.name })
        assertEquals(listOf(0.5f, 0.25f, 0f), legend.map { it.fraction })
        assertEquals(listOf(0f, 0f, 0f), Overlay.legend(classes, null).map { it.fraction })
    }
}
