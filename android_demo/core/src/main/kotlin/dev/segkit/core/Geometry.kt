package dev.segkit.core

/**
 * Rotation, resize and letterbox maths: where a camera or gallery frame lands in the model
 * input, and where the model's mask lands on the screen.
 *
 * Coordinates are continuous (a W x H image spans [0, W] x [0, H], pixel centres at +0.5),
 * y points down, and rotations are clockwise: CameraX's `rotationDegrees` and EXIF
 * orientation both say how far to turn the stored image clockwise to see it upright.
 */
data class Size(val width: Int, val height: Int)

data class Rect(val left: Float, val top: Float, val right: Float, val bottom: Float) {
    val width: Float get() = right - left
    val height: Float get() = bottom - top
}

/** How a frame is fitted into a box of another aspect ratio. */
enum class FitMode {
    /** Scale x and y separately: the whole frame, distorted. */
    STRETCH,

    /** Uniform scale so the whole frame fits, centred, padding the rest. */
    LETTERBOX,

    /** Uniform scale so the frame covers the box, centred, cutting the overflow. */
    CENTER_CROP
}

/** x' = a x + b y + tx, y' = c x + d y + ty (the first two rows of a 3x3 matrix). */
data class Affine(val a: Float, val b: Float, val tx: Float, val c: Float, val d: Float, val ty: Float) {
    fun mapX(x: Float, y: Float) = a * x + b * y + tx
    fun mapY(x: Float, y: Float) = c * x + d * y + ty

    /** This transform applied after `first`. */
    fun after(first: Affine) = Affine(
        a * first.a + b * first.c, a * first.b + b * first.d, a * first.tx + b * first.ty + tx,
        c * first.a + d * first.c, c * first.b + d * first.d, c * first.tx + d * first.ty + ty
    )

    fun inverse(): Affine {
        val det = a * d - b * c
        require(det != 0f) { "transform is not invertible" }
        val ia = d / det
        val ib = -b / det
        val ic = -c / det
        val id = a / det
        return Affine(ia, ib, -(ia * tx + ib * ty), ic, id, -(ic * tx + id * ty))
    }

    fun mapRect(r: Rect): Rect {
        val x1 = mapX(r.left, r.top)
        val x2 = mapX(r.right, r.top)
        val x3 = mapX(r.left, r.bottom)
        val x4 = mapX(r.right, r.bottom)
        val y1 = mapY(r.left, r.top)
        val y2 = mapY(r.right, r.top)
        val y3 = mapY(r.left, r.bottom)
        val y4 = mapY(r.right, r.bottom)
        return Rect(minOf(minOf(x1, x2), minOf(x3, x4)), minOf(minOf(y1, y2), minOf(y3, y4)),
            maxOf(maxOf(x1, x2), maxOf(x3, x4)), maxOf(maxOf(y1, y2), maxOf(y3, y4)))
    }

    /** Row-major 3x3 values, the order android.graphics.Matrix.setValues expects. */
    fun toMatrixValues() = floatArrayOf(a, b, tx, c, d, ty, 0f, 0f, 1f)

    companion object {
        val IDENTITY = Affine(1f, 0f, 0f, 0f, 1f, 0f)
        fun scale(sx: Float, sy: Float, tx: Float = 0f, ty: Float = 0f) = Affine(sx, 0f, tx, 0f, sy, ty)
    }
}

object Geometry {
    fun normalizeRotation(degrees: Int): Int {
        val r = ((degrees % 360) + 360) % 360
        require(r % 90 == 0) { "rotation must be a multiple of 90 degrees, got $degrees" }
        return r
    }

    /** The size of the frame once turned upright. */
    fun uprightSize(source: Size, rotationDegrees: Int): Size =
        if (normalizeRotation(rotationDegrees) % 180 == 0) source else Size(source.height, source.width)

    /** Turns the stored frame clockwise by `rotationDegrees` into upright coordinates. */
    fun rotation(source: Size, rotationDegrees: Int): Affine {
        val w = source.width.toFloat()
        val h = source.height.toFloat()
        return when (normalizeRotation(rotationDegrees)) {
            0 -> Affine.IDENTITY
            90 -> Affine(0f, -1f, h, 1f, 0f, 0f)      // (x, y) -> (h - y, x)
            180 -> Affine(-1f, 0f, w, 0f, -1f, h)     // (x, y) -> (w - x, h - y)
            else -> Affine(0f, 1f, 0f, -1f, 0f, w)    // (x, y) -> (y, w - x)
        }
    }

    /** Fits a `source`-sized frame into a `target` box. */
    fun fit(source: Size, target: Size, mode: FitMode): Affine {
        val sx = target.width.toFloat() / source.width
        val sy = target.height.toFloat() / source.height
        if (mode == FitMode.STRETCH) return Affine.scale(sx, sy)
        val s = if (mode == FitMode.LETTERBOX) minOf(sx, sy) else maxOf(sx, sy)
        return Affine.scale(s, s, (target.width - source.width * s) / 2f,
            (target.height - source.height * s) / 2f)
    }

    /** Stored frame -> model input: rotate upright, then fit. */
    fun frameToModel(frame: Size, rotationDegrees: Int, model: Size, mode: FitMode): Affine =
        fit(uprightSize(frame, rotationDegrees), model, mode).after(rotation(frame, rotationDegrees))

    /**
     * Where the model's output (the whole model canvas) lands in a view that shows the
     * upright frame with `viewMode` (PreviewView FILL_CENTER = CENTER_CROP, an Image with
     * ContentScale.Fit = LETTERBOX), given how the frame was fitted into the model.
     */
    fun modelRectInView(upright: Size, model: Size, modelMode: FitMode, view: Size,
                        viewMode: FitMode): Rect {
        val modelToUpright = fit(upright, model, modelMode).inverse()
        val uprightToView = fit(upright, view, viewMode)
        return uprightToView.after(modelToUpright)
            .mapRect(Rect(0f, 0f, model.width.toFloat(), model.height.toFloat()))
    }

    /** The part of the model input that holds real pixels (smaller than the model if letterboxed). */
    fun contentRect(upright: Size, model: Size, mode: FitMode): Rect {
        val r = fit(upright, model, mode).mapRect(Rect(0f, 0f, upright.width.toFloat(), upright.height.toFloat()))
        return Rect(maxOf(0f, r.left), maxOf(0f, r.top), minOf(model.width.toFloat(), r.right),
            minOf(model.height.toFloat(), r.bottom))
    }

    /** EXIF orientation tag -> clockwise degrees (mirrored tags are treated as their rotation). */
    fun exifToDegrees(orientation: Int): Int = when (orientation) {
        3, 4 -> 180
        6, 5 -> 90
        8, 7 -> 270
        else -> 0
    }

    /** Largest power-of-two subsampling that keeps the longer side at least `maxSide`. */
    fun sampleSize(source: Size, maxSide: Int): Int {
        var sample = 1
        while (maxOf(source.width, source.height) / (sample * 2) >= maxSide) sample *= 2
        return sample
    }
}
