package dev.segkit.demo

import android.content.Context
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.Preview
import androidx.camera.core.resolutionselector.AspectRatioStrategy
import androidx.camera.core.resolutionselector.ResolutionSelector
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.core.content.ContextCompat
import androidx.lifecycle.LifecycleOwner
import java.util.concurrent.Executor

/**
 * Binds the back camera's preview and analysis streams. Both use 4:3 so the analysed frame
 * shows what the preview shows; the analysis frame's `rotationDegrees` is applied by the
 * segmenter, and the overlay is placed with the same maths (core Geometry).
 */
class CameraBinder(private val context: Context) {
    fun bind(
        owner: LifecycleOwner,
        previewView: PreviewView,
        executor: Executor,
        analyzer: ImageAnalysis.Analyzer,
        onError: (String) -> Unit
    ): () -> Unit {
        val future = ProcessCameraProvider.getInstance(context)
        future.addListener({
            try {
                val provider = future.get()
                val selector = ResolutionSelector.Builder()
                    .setAspectRatioStrategy(AspectRatioStrategy.RATIO_4_3_FALLBACK_AUTO_STRATEGY)
                    .build()
                val preview = Preview.Builder().setResolutionSelector(selector).build()
                preview.setSurfaceProvider(previewView.surfaceProvider)
                val analysis = ImageAnalysis.Builder()
                    .setResolutionSelector(selector)
                    .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                    .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                    .build()
                previewView.display?.let { analysis.targetRotation = it.rotation }
                analysis.setAnalyzer(executor, analyzer)
                provider.unbindAll()
                provider.bindToLifecycle(owner, CameraSelector.DEFAULT_BACK_CAMERA, preview, analysis)
            } catch (e: Exception) {
                onError(e.message ?: e.javaClass.simpleName)
            }
        }, ContextCompat.getMainExecutor(context))
        return {
            if (future.isDone) {
                try {
                    future.get().unbindAll()
                } catch (e: Exception) {
                    // already gone
                }
            }
        }
    }
}
