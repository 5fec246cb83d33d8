package dev.segkit.demo

import android.app.Application
import android.graphics.Bitmap
import android.net.Uri
import android.os.SystemClock
import androidx.camera.core.ImageProxy
import androidx.compose.ui.graphics.asImageBitmap
import androidx.lifecycle.AndroidViewModel
import dev.segkit.core.Affine
import dev.segkit.core.CameraPermission
import dev.segkit.core.DemoEvent
import dev.segkit.core.Delegate
import dev.segkit.core.FitMode
import dev.segkit.core.FpsMeter
import dev.segkit.core.Geometry
import dev.segkit.core.LoadResult
import dev.segkit.core.ModelStatus
import dev.segkit.core.Overlay
import dev.segkit.core.Problem
import dev.segkit.core.Size
import dev.segkit.core.Source
import dev.segkit.core.reduce
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/**
 * Turns segmentation results into immutable UI state.
 *
 * All model work (loading, delegate switches, camera frames, gallery images) runs on one
 * serial executor, so the helper never sees two calls at once. State changes go through the
 * core's `reduce`, which is where the error behaviour is decided and tested.
 */
class SegmentationViewModel(app: Application) : AndroidViewModel(app) {
    private val helper = ImageSegmentationHelper(app.assets)
    private val gallery = GalleryDecoder(app.contentResolver)
    private val fps = FpsMeter()
    private var loaded: LoadResult.Loaded? = null
    private var lastPhoto: PhotoResult? = null

    /** The camera analyzer runs here too (CameraBinder gets this executor). */
    val inferenceExecutor: ExecutorService = Executors.newSingleThreadExecutor()

    private val _state = MutableStateFlow(UiState())
    val state: StateFlow<UiState> = _state.asStateFlow()

    private class PhotoResult(val photo: Bitmap, val classMap: IntArray, val model: Size, val transform: Affine)

    init {
        inferenceExecutor.execute { loadModel() }
    }

    private fun dispatch(event: DemoEvent, change: (UiState) -> UiState = { it }) =
        _state.update { change(it.copy(demo = reduce(it.demo, event))) }

    private fun loadModel() {
        when (val result = helper.load()) {
            is LoadResult.Failed -> dispatch(DemoEvent.ModelFailed(result.problem))
            is LoadResult.Loaded -> {
                loaded = result
                dispatch(DemoEvent.DelegatesAvailable(helper.availableDelegates()))
                openWith(Delegate.CPU)
            }
        }
    }

    /** On the executor: (re)build the interpreter, falling back to CPU if a delegate fails. */
    private fun openWith(delegate: Delegate) {
        val model = loaded ?: return
        val problem = helper.open(model, delegate)
        when {
            problem == null -> {
                dispatch(DemoEvent.DelegateChosen(delegate))
                dispatch(DemoEvent.ModelLoaded(model.contract))
            }
            problem is Problem.DelegateUnavailable -> {
                dispatch(DemoEvent.DelegateFailed(delegate, problem.detail))
                openWith(Delegate.CPU)
            }
            else -> dispatch(DemoEvent.ModelFailed(problem))
        }
        fps.reset()
    }

    fun selectDelegate(delegate: Delegate) {
        if (delegate !in state.value.demo.availableDelegates) {
            dispatch(DemoEvent.DelegateChosen(delegate))  // the reducer explains why not
            return
        }
        inferenceExecutor.execute { openWith(delegate) }
    }

    /** Android's answer, read through the core (see CameraPermission for what it means). */
    fun onPermission(granted: Boolean, shouldShowRationale: Boolean, askedBefore: Boolean) =
        dispatch(DemoEvent.CameraPermissionChanged(CameraPermission.status(granted, shouldShowRationale, askedBefore)))

    fun onCameraError(detail: String) = dispatch(DemoEvent.FrameFailed(Problem.CameraUnavailable(detail)))

    fun selectSource(source: Source) {
        fps.reset()
        dispatch(DemoEvent.SourceChosen(source)) { it.copy(mask = null) }
    }

    fun setOpacity(opacity: Float) {
        dispatch(DemoEvent.OpacityChanged(opacity))
        if (state.value.demo.source == Source.GALLERY) inferenceExecutor.execute { renderPhoto() }
    }

    fun dismissNotice() = dispatch(DemoEvent.NoticeDismissed)

    /** CameraX analyzer callback, on the inference executor. */
    fun onCameraFrame(image: ImageProxy) {
        image.use { proxy ->
            if (!state.value.demo.canSegmentCamera) return
            val result = segmentOrReport(proxy.toBitmap(), proxy.imageInfo.rotationDegrees, FitMode.CENTER_CROP)
                ?: return
            val m = state.value.demo.model as? ModelStatus.Ready ?: return
            val colors = Overlay.colorize(result.classMap, m.contract.classes.palette, 1f)
            val mask = Bitmap.createBitmap(colors, result.model.width, result.model.height, Bitmap.Config.ARGB_8888)
            val fpsNow = fps.tick(SystemClock.elapsedRealtimeNanos())
            dispatch(DemoEvent.FrameSegmented(result.classMap, result.timings, fpsNow)) {
                it.copy(mask = MaskImage(mask.asImageBitmap(), result.upright, result.model, result.mode))
            }
        }
    }

    fun onGalleryImage(uri: Uri) {
        selectSource(Source.GALLERY)
        inferenceExecutor.execute {
            val photo = try {
                gallery.decodeUpright(uri)
            } catch (e: Exception) {
                dispatch(DemoEvent.FrameFailed(Problem.ImageUnreadable(e.message ?: e.javaClass.simpleName)))
                return@execute
            }
            if (state.value.demo.model !is ModelStatus.Ready) return@execute
            // Letterbox: the whole photo is segmented, nothing is cut away.
            val result = segmentOrReport(photo, 0, FitMode.LETTERBOX) ?: return@execute
            lastPhoto = PhotoResult(photo, result.classMap, result.model, result.frameToModel)
            dispatch(DemoEvent.FrameSegmented(result.classMap, result.timings, 0.0))
            renderPhoto()
        }
    }

    /** On the executor: blend the last photo's mask at the current opacity (core Overlay). */
    private fun renderPhoto() {
        val last = lastPhoto ?: return
        val m = state.value.demo.model as? ModelStatus.Ready ?: return
        val width = last.photo.width
        val height = last.photo.height
        val pixels = IntArray(width * height)
        last.photo.getPixels(pixels, 0, width, 0, 0, width, height)
        val blended = Overlay.compose(pixels, Size(width, height), last.classMap, last.model, last.transform,
            m.contract.classes.palette, state.value.demo.opacity)
        val bitmap = Bitmap.createBitmap(blended, width, height, Bitmap.Config.ARGB_8888)
        _state.update { it.copy(photo = bitmap.asImageBitmap()) }
    }

    /** Runs the helper; a runtime failure becomes state (and a GPU/NNAPI failure a CPU fallback). */
    private fun segmentOrReport(bitmap: Bitmap, rotation: Int, mode: FitMode): ImageSegmentationHelper.Result? =
        try {
            helper.segment(bitmap, Geometry.normalizeRotation(rotation), mode)
        } catch (e: Exception) {
            val delegate = state.value.demo.delegate
            val detail = e.message ?: e.javaClass.simpleName
            if (delegate != Delegate.CPU) {
                dispatch(DemoEvent.DelegateFailed(delegate, detail))
                openWith(Delegate.CPU)
            } else {
                dispatch(DemoEvent.FrameFailed(Problem.InferenceFailed(detail)))
            }
            null
        }

    override fun onCleared() {
        inferenceExecutor.execute { helper.close() }
        inferenceExecutor.shutdown()
    }
}
