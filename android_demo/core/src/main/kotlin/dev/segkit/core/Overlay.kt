package dev.segkit.core

/** Colours as Android's packed ARGB ints (0xAARRGGBB). */
object Palette {
    fun argb(r: Int, g: Int, b: Int, a: Int = 255): Int =
        (a and 0xFF shl 24) or (r and 0xFF shl 16) or (g and 0xFF shl 8) or (b and 0xFF)

    fun alpha(c: Int) = c ushr 24
    fun red(c: Int) = (c shr 16) and 0xFF
    fun green(c: Int) = (c shr 8) and 0xFF
    fun blue(c: Int) = c and 0xFF

    /** "#RRGGBB" for the legend. */
    fun hex(c: Int): String {
        val digits = "0123456789ABCDEF"
        val out = StringBuilder("#")
        for (shift in intArrayOf(20, 16, 12, 8, 4, 0)) out.append(digits[(c shr shift) and 15])
        return out.toString()
    }
}

/** One legend row: the contract's name and colour, and the share of the frame it covers. */
data class LegendEntry(val index: Int, val name: String, val argb: Int, val fraction: Float)

object Overlay {
    /**
     * The class map painted with the contract's palette at `opacity` (0..1). Indices outside
     * the palette (the ignore index, or garbage) stay transparent.
     */
    fun colorize(classMap: IntArray, palette: List<Int>, opacity: Float): IntArray {
        val alpha = Math.round(clamp01(opacity) * 255f)
        val colors = IntArray(palette.size) { (palette[it] and 0xFFFFFF) or (alpha shl 24) }
        return IntArray(classMap.size) { i ->
            val k = classMap[i]
            if (k >= 0 && k < colors.size) colors[k] else 0
        }
    }

    /**
     * `over` drawn on an opaque `base` ("source over"); the overlay's own alpha is the
     * opacity. Channels are rounded to nearest, the result is opaque.
     */
    fun blend(base: Int, over: Int): Int {
        val a = Palette.alpha(over)
        if (a == 0) return base or (0xFF shl 24)
        if (a == 255) return over
        fun mix(b: Int, o: Int) = (b * (255 - a) + o * a + 127) / 255
        return Palette.argb(mix(Palette.red(base), Palette.red(over)),
            mix(Palette.green(base), Palette.green(over)), mix(Palette.blue(base), Palette.blue(over)))
    }

    /**
     * A photo with the mask blended in, at the photo's resolution: each photo pixel looks up
     * the class at its position in the model input (nearest neighbour through `frameToModel`),
     * so letterbox padding and cropped-away parts never colour the photo.
     */
    fun compose(photo: IntArray, photoSize: Size, classMap: IntArray, model: Size,
                frameToModel: Affine, palette: List<Int>, opacity: Float): IntArray {
        val colors = colorize(IntArray(palette.size) { it }, palette, opacity)
        val out = IntArray(photo.size)
        for (y in 0 until photoSize.height) {
            val cy = y + 0.5f
            for (x in 0 until photoSize.width) {
                val cx = x + 0.5f
                val mx = Math.floor(frameToModel.mapX(cx, cy).toDouble()).toInt()
                val my = Math.floor(frameToModel.mapY(cx, cy).toDouble()).toInt()
                val i = y * photoSize.width + x
                out[i] = if (mx < 0 || my < 0 || mx >= model.width || my >= model.height) {
                    photo[i] or (0xFF shl 24)
                } else {
                    val k = classMap[my * model.width + mx]
                    blend(photo[i], if (k >= 0 && k < colors.size) colors[k] else 0)
                }
            }
        }
        return out
    }

    /** Pixels per class (indices outside 0 until numClasses are not counted). */
    fun histogram(classMap: IntArray, numClasses: Int): IntArray {
        val counts = IntArray(numClasses)
        for (k in classMap) if (k >= 0 && k < numClasses) counts[k]++
        return counts
    }

    /**
     * Every class of the contract, in contract order, with the share of the current frame it
     * covers (0 before the first frame). The UI marks the present ones.
     */
    fun legend(classes: ClassInfo, classMap: IntArray?): List<LegendEntry> {
        val counts = if (classMap == null) null else histogram(classMap, classes.count)
        val total = classMap?.size ?: 0
        return classes.names.mapIndexed { i, name ->
            val share = if (counts == null || total == 0) 0f else counts[i].toFloat() / total
            LegendEntry(i, name, classes.palette[i], share)
        }
    }

    private fun clamp01(v: Float) = if (v < 0f) 0f else if (v > 1f) 1f else v
}
