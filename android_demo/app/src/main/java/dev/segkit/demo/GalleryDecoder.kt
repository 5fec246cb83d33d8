package dev.segkit.demo

import android.content.ContentResolver
import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.graphics.Matrix
import android.net.Uri
import androidx.exifinterface.media.ExifInterface
import dev.segkit.core.Geometry
import dev.segkit.core.Size

/** Decodes a picked image, subsampled to at most ~MAX_SIDE and turned upright from EXIF. */
class GalleryDecoder(private val resolver: ContentResolver) {
    fun decodeUpright(uri: Uri): Bitmap {
        val bounds = BitmapFactory.Options().apply { inJustDecodeBounds = true }
        resolver.openInputStream(uri).use { BitmapFactory.decodeStream(it, null, bounds) }
        if (bounds.outWidth <= 0 || bounds.outHeight <= 0) throw IllegalArgumentException("not an image")
        val options = BitmapFactory.Options().apply {
            inSampleSize = Geometry.sampleSize(Size(bounds.outWidth, bounds.outHeight), MAX_SIDE)
            inPreferredConfig = Bitmap.Config.ARGB_8888
        }
        val decoded = resolver.openInputStream(uri).use { BitmapFactory.decodeStream(it, null, options) }
            ?: throw IllegalArgumentException("the decoder returned nothing")
        val orientation = resolver.openInputStream(uri).use { stream ->
            if (stream == null) ExifInterface.ORIENTATION_NORMAL
            else ExifInterface(stream).getAttributeInt(ExifInterface.TAG_ORIENTATION, ExifInterface.ORIENTATION_NORMAL)
        }
        val degrees = Geometry.exifToDegrees(orientation)
        if (degrees == 0) return decoded
        val rotate = Matrix().apply { postRotate(degrees.toFloat()) }
        return Bitmap.createBitmap(decoded, 0, 0, decoded.width, decoded.height, rotate, true)
    }

    companion object {
        const val MAX_SIDE = 1280
    }
}
