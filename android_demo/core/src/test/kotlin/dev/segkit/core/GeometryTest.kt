package dev.segkit.core

import org.junit.Assert.assertEquals
import org.junit.Test

class GeometryTest {
    private fun assertPoint(t: Affine, x: Float, y: Float, wantX: Float, wantY: Float) {
        assertEquals("x of ($x, $y)", wantX, t.mapX(x, y), 1e-4f)
        assertEquals("y of ($x, $y)", wantY, t.mapY(x, y), 1e-4f)
    }

    private fun assertRect(want: Rect, got: Rect) {
        assertEquals(want.left, got.left, 1e-3f)
        assertEquals(want.top, got.top, 1e-3f)
        assertEquals(want.right, got.right, 1e-3f)
        assertEquals(want.bottom, got.bottom, 1e-3f)
    }

    @Test
    fun clockwiseRotationsMoveCornersWhereTheyBelong() {
        val frame = Size(640, 480)
        // 90: the stored top-left corner ends up top-right of the 480 x 640 upright frame.
        assertPoint(Geometry.rotation(frame, 90), 0f, 0f, 480f, 0f)
        assertPoint(Geometry.rotation(frame, 90), 640f, 0f, 480f, 640f)
        assertPoint(Geometry.rotation(frame, 180), 0f, 0f, 640f, 480f)
        assertPoint(Geometry.rotation(frame, 270), 0f, 0f, 0f, 640f)
        assertPoint(Geometry.rotation(frame, -90), 0f, 0f, 0f, 640f)
        assertEquals(Size(480, 640), Geometry.uprightSize(frame, 270))
        assertEquals(frame, Geometry.uprightSize(frame, 180))
    }

    @Test(expected = IllegalArgumentException::class)
    fun oddRotationsAreRefused() {
        Geometry.normalizeRotation(45)
    }

    @Test
    fun letterboxCentresAndPads() {
        // 480 x 640 portrait into the 128 x 64 model: scale 0.1, 48 px wide, 40 px each side.
        val t = Geometry.fit(Size(480, 640), Size(128, 64), FitMode.LETTERBOX)
        assertPoint(t, 0f, 0f, 40f, 0f)
        assertPoint(t, 480f, 640f, 88f, 64f)
        assertRect(Rect(40f, 0f, 88f, 64f), Geometry.contentRect(Size(480, 640), Size(128, 64), FitMode.LETTERBOX))
    }

    @Test
    fun centerCropCoversAndCuts() {
        // 640 x 480 into 128 x 64: scale 0.2 (128 / 640), height 96 -> 16 px cut top and bottom.
        val t = Geometry.fit(Size(640, 480), Size(128, 64), FitMode.CENTER_CROP)
        assertPoint(t, 0f, 0f, 0f, -16f)
        assertPoint(t, 640f, 480f, 128f, 80f)
        assertRect(Rect(0f, 0f, 128f, 64f), Geometry.contentRect(Size(640, 480), Size(128, 64), FitMode.CENTER_CROP))
    }

    @Test
    fun stretchScalesAxesSeparately() {
        assertPoint(Geometry.fit(Size(640, 480), Size(128, 64), FitMode.STRETCH), 640f, 480f, 128f, 64f)
    }

    @Test
    fun frameToModelRotatesThenFits() {
        // A 640 x 480 sensor frame with rotation 90 is a 480 x 640 portrait picture.
        val t = Geometry.frameToModel(Size(640, 480), 90, Size(128, 64), FitMode.LETTERBOX)
        assertPoint(t, 0f, 0f, 88f, 0f)        // stored top-left -> upright top-right
        assertPoint(t, 0f, 480f, 40f, 0f)      // stored bottom-left -> upright top-left
        assertPoint(t, 640f, 480f, 40f, 64f)   // stored bottom-right -> upright bottom-left
        val back = t.inverse()
        assertPoint(back, 40f, 64f, 640f, 480f)
        assertPoint(t.after(back), 3f, 5f, 3f, 5f)
    }

    @Test
    fun modelRectInViewFollowsBothFits() {
        // Upright 480 x 640 frame cropped into the model (scale 128/480), shown FILL_CENTER on a
        // 1080 x 1440 view (scale 2.25): the model's band is 1080 wide and 540 tall, centred.
        val r = Geometry.modelRectInView(Size(480, 640), Size(128, 64), FitMode.CENTER_CROP,
            Size(1080, 1440), FitMode.CENTER_CROP)
        assertRect(Rect(0f, 450f, 1080f, 990f), r)
        // Letterboxed into the model, then shown letterboxed: the model canvas is wider than the photo.
        val fit = Geometry.modelRectInView(Size(480, 640), Size(128, 64), FitMode.LETTERBOX,
            Size(1080, 1440), FitMode.LETTERBOX)
        assertRect(Rect(-900f, 0f, 1980f, 1440f), fit)
    }

    @Test
    fun matrixValuesAreRowMajor() {
        val v = Affine(1f, 2f, 3f, 4f, 5f, 6f).toMatrixValues()
        assertEquals(listOf(1f, 2f, 3f, 4f, 5f, 6f, 0f, 0f, 1f), v.toList())
    }

    @Test
    fun exifOrientationAndSampling() {
        assertEquals(listOf(0, 0, 0, 180, 180, 90, 90, 270, 270),
            (0..8).map { Geometry.exifToDegrees(it) })
        assertEquals(4, Geometry.sampleSize(Size(4000, 3000), 1000))
        assertEquals(1, Geometry.sampleSize(Size(800, 600), 1000))
    }
}
