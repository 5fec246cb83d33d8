package dev.segkit.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Test
import java.nio.ByteBuffer

class StateTest {
    private val contract = Golden.contract

    /** Assets as a map; a missing key is a missing asset. */
    private class FakeAssets(private val files: Map<String, ByteArray>) : AssetSource {
        override fun readText(name: String) = files[name]?.let { String(it, Charsets.UTF_8) }
        override fun readBuffer(name: String): ByteBuffer? = files[name]?.let { ByteBuffer.wrap(it) }
    }

    private val fakeModel = ByteArray(64) { it.toByte() }

    /** The golden contract rewritten to describe `fakeModel`, so the loader accepts the pair. */
    private fun contractForFakeModel(): String = Golden.contractText
        .replace("\"size_bytes\": ${contract.artifact.sizeBytes}", "\"size_bytes\": ${fakeModel.size}")
        .replace(contract.artifact.sha256, ModelLoader.sha256Hex(ByteBuffer.wrap(fakeModel)))

    private fun load(files: Map<String, ByteArray>) = ModelLoader.load(FakeAssets(files))

    private fun failure(result: LoadResult): Problem = (result as LoadResult.Failed).problem

    @Test
    fun loadsAMatchingModelAndContract() {
        val result = load(mapOf(AppContract.MODEL_ASSET to fakeModel,
            AppContract.CONTRACT_ASSET to contractForFakeModel().toByteArray()))
        assertTrue(result is LoadResult.Loaded)
        assertEquals(fakeModel.size, (result as LoadResult.Loaded).model.remaining())
    }

    @Test
    fun aMissingModelIsNamed() {
        val p = failure(load(mapOf(AppContract.CONTRACT_ASSET to contractForFakeModel().toByteArray())))
        assertEquals(Problem.ModelMissing(AppContract.MODEL_ASSET), p)
        assertTrue(p.message.contains("make android-assets"))
        assertEquals(Problem.ModelMissing(AppContract.MODEL_ASSET), failure(load(emptyMap())))
    }

    @Test
    fun aMissingContractIsNamed() {
        val p = failure(load(mapOf(AppContract.MODEL_ASSET to fakeModel)))
        assertEquals(Problem.ContractMissing(AppContract.CONTRACT_ASSET), p)
    }

    @Test
    fun anUnsupportedSchemaReachesTheLoaderResult() {
        val text = contractForFakeModel().replace("\"schema_version\": 1", "\"schema_version\": 2")
        val p = failure(load(mapOf(AppContract.MODEL_ASSET to fakeModel, AppContract.CONTRACT_ASSET to text.toByteArray())))
        assertEquals(Problem.UnsupportedSchema(2, AppContract.SUPPORTED_SCHEMA_VERSION), p)
    }

    @Test
    fun aModelFromAnotherExportIsCaught() {
        val other = ByteArray(64) { (it + 1).toByte() }
        val p = failure(load(mapOf(AppContract.MODEL_ASSET to other,
            AppContract.CONTRACT_ASSET to contractForFakeModel().toByteArray())))
        assertTrue(p is Problem.ModelContractMismatch)
        val sized = failure(load(mapOf(AppContract.MODEL_ASSET to ByteArray(3),
            AppContract.CONTRACT_ASSET to contractForFakeModel().toByteArray())))
        assertTrue(sized.message, sized.message.contains("3 bytes"))
    }

    @Test
    fun modelFailuresBlockTheScreenWithTheirMessage() {
        val s = reduce(DemoState(), DemoEvent.ModelFailed(Problem.UnsupportedSchema(2, 1)))
        assertEquals(Problem.UnsupportedSchema(2, 1), s.blockingProblem)
        assertFalse(s.canSegmentCamera)
    }

    @Test
    fun cameraPermissionDeniedBlocksOnlyTheCamera() {
        var s = reduce(DemoState(), DemoEvent.ModelLoaded(contract))
        s = reduce(s, DemoEvent.CameraPermissionChanged(CameraPermission.status(false, true, true)))
        assertEquals(Problem.CameraPermissionDenied(true), s.blockingProblem)
        assertFalse(s.canSegmentCamera)
        s = reduce(s, DemoEvent.SourceChosen(Source.GALLERY))
        assertNull(s.blockingProblem)
        s = reduce(s, DemoEvent.SourceChosen(Source.CAMERA))
        s = reduce(s, DemoEvent.CameraPermissionChanged(CameraPermission.status(false, false, true)))
        assertEquals(Problem.CameraPermissionDenied(false), s.blockingProblem)
        s = reduce(s, DemoEvent.CameraPermissionChanged(CameraPermission.status(true, false, true)))
        assertNull(s.blockingProblem)
        assertTrue(s.canSegmentCamera)
    }

    @Test
    fun permissionAnswersMapToStatuses() {
        assertEquals(CameraStatus.Granted, CameraPermission.status(true, false, true))
        assertEquals(CameraStatus.Unknown, CameraPermission.status(false, false, false))
        assertEquals(CameraStatus.Denied(true), CameraPermission.status(false, true, true))
        assertEquals(CameraStatus.Denied(false), CameraPermission.status(false, false, true))
        assertTrue(Problem.CameraPermissionDenied(false).message.contains("Settings"))
    }

    @Test
    fun aCameraThatCannotStartSaysSoAndOffersTheGallery() {
        var s = reduce(DemoState(), DemoEvent.ModelLoaded(contract))
        s = reduce(s, DemoEvent.FrameFailed(Problem.CameraUnavailable("no back camera")))
        assertTrue(s.blockingProblem!!.message.contains("no back camera"))
        assertTrue(s.blockingProblem!!.message.contains("gallery"))
        assertNull(reduce(s, DemoEvent.SourceChosen(Source.GALLERY)).blockingProblem)
    }

    @Test
    fun aFailingDelegateFallsBackToCpuWithANotice() {
        var s = reduce(DemoState(), DemoEvent.DelegatesAvailable(listOf(Delegate.GPU, Delegate.NNAPI)))
        assertEquals(listOf(Delegate.CPU, Delegate.GPU, Delegate.NNAPI), s.availableDelegates)
        s = reduce(s, DemoEvent.DelegateChosen(Delegate.GPU))
        assertEquals(Delegate.GPU, s.delegate)
        s = reduce(s, DemoEvent.DelegateFailed(Delegate.GPU, "OpenCL missing"))
        assertEquals(Delegate.CPU, s.delegate)
        assertEquals(listOf(Delegate.CPU, Delegate.NNAPI), s.availableDelegates)
        assertTrue(s.notice!!.contains("OpenCL missing"))
        s = reduce(s, DemoEvent.DelegateChosen(Delegate.GPU))
        assertEquals(Delegate.CPU, s.delegate)
        assertTrue(s.notice!!.contains("not available"))
        assertNull(reduce(s, DemoEvent.NoticeDismissed).notice)
    }

    @Test
    fun choosingTheGpuWarnsAboutTheOpsItCannotTake() {
        val partial = contract.copy(gpuUnsupportedOps = listOf("BROADCAST_TO"))
        var s = reduce(DemoState(), DemoEvent.DelegatesAvailable(listOf(Delegate.GPU)))
        s = reduce(s, DemoEvent.ModelLoaded(partial))
        s = reduce(s, DemoEvent.DelegateChosen(Delegate.GPU))
        assertEquals(Delegate.GPU, s.delegate)
        assertTrue(s.notice!!.contains("BROADCAST_TO"))
        s = reduce(reduce(s, DemoEvent.ModelLoaded(contract)), DemoEvent.DelegateChosen(Delegate.GPU))
        assertNull(s.notice)
    }

    @Test
    fun framesUpdateTimingsLegendAndClearFrameProblems() {
        var s = reduce(DemoState(), DemoEvent.ModelLoaded(contract))
        assertEquals(contract.classes.count, s.legend.size)
        s = reduce(s, DemoEvent.FrameFailed(Problem.ImageUnreadable("truncated")))
        assertEquals(Problem.ImageUnreadable("truncated"), s.blockingProblem)
        s = reduce(s, DemoEvent.FrameSegmented(Golden.expectedClasses(), Timings(1.0, 2.0, 3.0), 30.0))
        assertNull(s.blockingProblem)
        assertEquals(6.0, s.timings!!.totalMs, 0.0)
        assertTrue(s.legend.count { it.fraction > 0f } >= 3)
        assertEquals(1f, reduce(s, DemoEvent.OpacityChanged(3f)).opacity, 0f)
    }

    @Test
    fun fpsOverASlidingWindow() {
        val meter = FpsMeter(window = 4)
        assertEquals(0.0, meter.tick(0L), 0.0)
        meter.tick(100_000_000L)
        assertEquals(10.0, meter.tick(200_000_000L), 1e-9)
        meter.tick(300_000_000L)
        // Window of 4: the oldest kept tick is 100 ms once a fifth arrives.
        assertEquals(3 / 0.4, meter.tick(500_000_000L), 1e-9)
        meter.reset()
        assertEquals(0.0, meter.fps(), 0.0)
    }
}
