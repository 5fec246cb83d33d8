package dev.segkit.core

/**
 * The screen's state as one immutable value, and the only function that changes it.
 *
 * The Android ViewModel feeds events into `reduce` and publishes the result; composables only
 * draw it. Keeping this here (no Android types) is what lets the error behaviour be tested on
 * a plain JVM: a missing model, an unsupported contract or a denied camera each end in a state
 * with a message on screen, never in an exception.
 */
data class Timings(val preMs: Double, val inferMs: Double, val postMs: Double) {
    val totalMs: Double get() = preMs + inferMs + postMs
}

enum class Source { CAMERA, GALLERY }

sealed class ModelStatus {
    object Loading : ModelStatus()
    data class Ready(val contract: ModelContract) : ModelStatus()
    data class Failed(val problem: Problem) : ModelStatus()
}

sealed class CameraStatus {
    /** Not asked yet (or the answer is not known). */
    object Unknown : CameraStatus()
    object Granted : CameraStatus()
    data class Denied(val canAskAgain: Boolean) : CameraStatus()
}

data class DemoState(
    val model: ModelStatus = ModelStatus.Loading,
    val camera: CameraStatus = CameraStatus.Unknown,
    val source: Source = Source.CAMERA,
    val delegate: Delegate = Delegate.CPU,
    val availableDelegates: List<Delegate> = listOf(Delegate.CPU),
    val opacity: Float = 0.5f,
    val legend: List<LegendEntry> = emptyList(),
    val timings: Timings? = null,
    val fps: Double = 0.0,
    /** A passing remark (e.g. a delegate fell back to CPU); the screen keeps working. */
    val notice: String? = null,
    /** The last frame or image that failed; cleared by the next success. */
    val frameProblem: Problem? = null
) {
    /** What blocks the current view, if anything: shown instead of the overlay. */
    val blockingProblem: Problem?
        get() {
            val m = model
            if (m is ModelStatus.Failed) return m.problem
            val c = camera
            if (source == Source.CAMERA && c is CameraStatus.Denied) {
                return Problem.CameraPermissionDenied(c.canAskAgain)
            }
            return frameProblem
        }

    /** Whether frames should be sent to the model at all. */
    val canSegmentCamera: Boolean
        get() = model is ModelStatus.Ready && camera == CameraStatus.Granted && source == Source.CAMERA
}

sealed class DemoEvent {
    data class ModelLoaded(val contract: ModelContract) : DemoEvent()
    data class ModelFailed(val problem: Problem) : DemoEvent()
    data class CameraPermissionChanged(val status: CameraStatus) : DemoEvent()
    data class SourceChosen(val source: Source) : DemoEvent()
    data class DelegatesAvailable(val delegates: List<Delegate>) : DemoEvent()
    data class DelegateChosen(val delegate: Delegate) : DemoEvent()
    data class DelegateFailed(val delegate: Delegate, val detail: String) : DemoEvent()
    data class OpacityChanged(val opacity: Float) : DemoEvent()
    data class FrameSegmented(val classMap: IntArray, val timings: Timings, val fps: Double) : DemoEvent()
    data class FrameFailed(val problem: Problem) : DemoEvent()
    object NoticeDismissed : DemoEvent()
}

fun reduce(state: DemoState, event: DemoEvent): DemoState = when (event) {
    is DemoEvent.ModelLoaded -> state.copy(
        model = ModelStatus.Ready(event.contract),
        legend = Overlay.legend(event.contract.classes, null),
        frameProblem = null
    )
    is DemoEvent.ModelFailed -> state.copy(model = ModelStatus.Failed(event.problem), legend = emptyList())
    is DemoEvent.CameraPermissionChanged -> state.copy(camera = event.status)
    is DemoEvent.SourceChosen -> state.copy(source = event.source, timings = null, fps = 0.0, frameProblem = null)
    is DemoEvent.DelegatesAvailable -> {
        val available = listOf(Delegate.CPU) + event.delegates.filter { it != Delegate.CPU }.distinct()
        state.copy(availableDelegates = available,
            delegate = if (state.delegate in available) state.delegate else Delegate.CPU)
    }
    is DemoEvent.DelegateChosen ->
        if (event.delegate in state.availableDelegates) {
            state.copy(delegate = event.delegate, notice = gpuWarning(state, event.delegate))
        } else state.copy(notice = "${event.delegate.label} is not available on this device.")
    is DemoEvent.DelegateFailed -> state.copy(
        delegate = Delegate.CPU,
        availableDelegates = state.availableDelegates.filter { it != event.delegate || it == Delegate.CPU },
        notice = Problem.DelegateUnavailable(event.delegate, event.detail).message
    )
    is DemoEvent.OpacityChanged -> state.copy(opacity = maxOf(0f, minOf(1f, event.opacity)))
    is DemoEvent.FrameSegmented -> {
        val m = state.model
        state.copy(
            timings = event.timings, fps = event.fps, frameProblem = null,
            legend = if (m is ModelStatus.Ready) Overlay.legend(m.contract.classes, event.classMap) else state.legend
        )
    }
    is DemoEvent.FrameFailed -> state.copy(frameProblem = event.problem)
    DemoEvent.NoticeDismissed -> state.copy(notice = null)
}

/**
 * Android's permission answer as a CameraStatus. After a denial Android reports whether it
 * would show the rationale: true means the dialog can be shown again, false (after a denial)
 * means "don't ask again" was chosen, or the policy forbids it, and only Settings can help.
 */
object CameraPermission {
    fun status(granted: Boolean, shouldShowRationale: Boolean, askedBefore: Boolean): CameraStatus = when {
        granted -> CameraStatus.Granted
        !askedBefore -> CameraStatus.Unknown
        else -> CameraStatus.Denied(canAskAgain = shouldShowRationale)
    }
}

/** Frames per second over a sliding window of completion times (nanoseconds). */
class FpsMeter(private val window: Int = 30) {
    private val times = LongArray(window)
    private var count = 0
    private var next = 0

    fun tick(nowNanos: Long): Double {
        times[next] = nowNanos
        next = (next + 1) % window
        if (count < window) count++
        return fps()
    }

    fun fps(): Double {
        if (count < 2) return 0.0
        val newest = times[(next - 1 + window) % window]
        val oldest = times[if (count < window) 0 else next]
        val span = newest - oldest
        return if (span <= 0) 0.0 else (count - 1) * 1e9 / span
    }

    fun reset() {
        count = 0
        next = 0
    }
}

/** Before the GPU delegate runs: which ops of this model it cannot take (they fall back to the CPU). */
internal fun gpuWarning(state: DemoState, delegate: Delegate): String? {
    val model = state.model as? ModelStatus.Ready ?: return null
    val ops = model.contract.gpuUnsupportedOps
    if (delegate != Delegate.GPU || ops.isEmpty()) return null
    return "The GPU delegate cannot run ${ops.joinToString(", ")} of this model: those ops fall " +
        "back to the CPU, which can make it slower than CPU (XNNPACK) alone."
}
