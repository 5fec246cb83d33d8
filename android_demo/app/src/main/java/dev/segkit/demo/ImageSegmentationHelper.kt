package dev.segkit.demo

import android.content.res.AssetManager
import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.Matrix
import android.graphics.Paint
import android.os.Build
import android.os.SystemClock
import dev.segkit.core.Affine
import dev.segkit.core.AssetSource
import dev.segkit.core.Delegate
import dev.segkit.core.FitMode
import dev.segkit.core.Geometry
import dev.segkit.core.InputEncoder
import dev.segkit.core.LoadResult
import dev.segkit.core.ModelContract
import dev.segkit.core.ModelLoader
import dev.segkit.core.OutputDecoder
import dev.segkit.core.Problem
import dev.segkit.core.Size
import dev.segkit.core.Timings
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.gpu.CompatibilityList
import org.tensorflow.lite.gpu.GpuDelegate
import org.tensorflow.lite.nnapi.NnApiDelegate
import java.io.FileInputStream
import java.io.IOException
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.channels.FileChannel

/**
 * The only class that touches the LiteRT runtime.
 *
 * `segment(bitmap, rotation, mode)` turns one frame into a class map and reports the pre,
 * inference and post times. Everything about tensors (quantization, layouts, argmax) is the
 * tested core's; this class only moves pixels into the interpreter and back.
 *
 * Not thread-safe: the ViewModel calls it from one executor, so delegate switches and frames
 * never overlap.
 */
class ImageSegmentationHelper(private val assets: AssetManager) : AutoCloseable {

    data class Result(
        /** Row-major class indices, model width x height. */
        val classMap: IntArray,
        val model: Size,
        /** The frame once turned upright, and how it was fitted into the model. */
        val upright: Size,
        val mode: FitMode,
        val frameToModel: Affine,
        val timings: Timings
    )

    private var interpreter: Interpreter? = null
    private var gpu: GpuDelegate? = null
    private var nnapi: NnApiDelegate? = null
    private var contract: ModelContract? = null
    private var input: ByteBuffer? = null
    private var output: ByteBuffer? = null
    private var table: Array<IntArray>? = null
    private var canvasBitmap: Bitmap? = null
    private var pixels: IntArray = IntArray(0)
    private val paint = Paint(Paint.FILTER_BITMAP_FLAG)

    /** Reads the contract and model from assets and checks that they belong together. */
    fun load(): LoadResult = ModelLoader.load(AndroidAssets(assets))

    fun availableDelegates(): List<Delegate> {
        val delegates = mutableListOf(Delegate.CPU)
        val gpuSupported = try {
            val list = CompatibilityList()
            try {
                list.isDelegateSupportedOnThisDevice
            } finally {
                list.close()
            }
        } catch (e: Throwable) {  // missing OpenCL/GL libraries surface as linkage errors
            false
        }
        if (gpuSupported) delegates.add(Delegate.GPU)
        // NNAPI exists from Android 8.1; it is deprecated from Android 15 but still present.
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.O_MR1) delegates.add(Delegate.NNAPI)
        return delegates
    }

    /** Builds the interpreter for `delegate`; returns the Problem instead of throwing. */
    fun open(loaded: LoadResult.Loaded, delegate: Delegate, threads: Int = 4): Problem? {
        close()
        val options = Interpreter.Options().setNumThreads(threads)
        try {
            when (delegate) {
                Delegate.CPU -> options.setUseXNNPACK(true)
                Delegate.GPU -> {
                    val list = CompatibilityList()
                    val gpuOptions = try { list.bestOptionsForThisDevice } finally { list.close() }
                    options.addDelegate(GpuDelegate(gpuOptions).also { gpu = it })
                }
                Delegate.NNAPI -> options.addDelegate(NnApiDelegate().also { nnapi = it })
            }
            val created = Interpreter(loaded.model, options)
            interpreter = created
            checkTensors(created, loaded.contract)?.let { close(); return it }
        } catch (e: Throwable) {
            close()
            val detail = e.message ?: e.javaClass.simpleName
            return if (delegate == Delegate.CPU) Problem.InferenceFailed("the interpreter could not be created: $detail")
            else Problem.DelegateUnavailable(delegate, detail)
        }
        contract = loaded.contract
        val spec = loaded.contract.input
        input = ByteBuffer.allocateDirect(InputEncoder.byteSize(spec)).order(ByteOrder.nativeOrder())
        output = ByteBuffer.allocateDirect(interpreter!!.getOutputTensor(0).numBytes())
            .order(ByteOrder.nativeOrder())
        table = InputEncoder.lookupTable(spec)
        canvasBitmap = Bitmap.createBitmap(spec.width, spec.height, Bitmap.Config.ARGB_8888)
        pixels = IntArray(spec.width * spec.height)
        return null
    }

    /** The contract must describe the tensors the interpreter actually has. */
    private fun checkTensors(interpreter: Interpreter, contract: ModelContract): Problem? {
        val inTensor = interpreter.getInputTensor(0)
        val outTensor = interpreter.getOutputTensor(0)
        val inShape = inTensor.shape().toList()
        val outShape = outTensor.shape().toList()
        return when {
            inShape != contract.input.shape -> Problem.ModelContractMismatch("model input $inShape, contract ${contract.input.shape}")
            outShape != contract.output.shape -> Problem.ModelContractMismatch("model output $outShape, contract ${contract.output.shape}")
            dtypeName(inTensor.dataType()) != contract.input.dtype ->
                Problem.ModelContractMismatch("model input ${inTensor.dataType()}, contract ${contract.input.dtype}")
            else -> null
        }
    }

    private fun dtypeName(type: DataType): String = when (type) {
        DataType.FLOAT32 -> "float32"
        DataType.INT8 -> "int8"
        DataType.UINT8 -> "uint8"
        DataType.INT32 -> "int32"
        DataType.INT64 -> "int64"
        else -> type.name
    }

    /**
     * One frame: rotate upright and fit into the model input (`mode`), encode, run, argmax.
     * Throws on runtime failure; the ViewModel turns that into a Problem.
     */
    fun segment(bitmap: Bitmap, rotationDegrees: Int, mode: FitMode): Result {
        val interpreter = checkNotNull(interpreter) { "segment() called before open()" }
        val contract = contract!!
        val spec = contract.input
        val start = SystemClock.elapsedRealtimeNanos()

        val frame = Size(bitmap.width, bitmap.height)
        val model = Size(spec.width, spec.height)
        val transform = Geometry.frameToModel(frame, rotationDegrees, model, mode)
        val target = canvasBitmap!!
        val canvas = Canvas(target)
        canvas.drawColor(InputEncoder.paddingColor(spec.normalization!!))
        canvas.drawBitmap(bitmap, Matrix().apply { setValues(transform.toMatrixValues()) }, paint)
        target.getPixels(pixels, 0, model.width, 0, 0, model.width, model.height)
        val inputBuffer = input!!
        inputBuffer.rewind()
        InputEncoder.encode(pixels, model.width, model.height, spec, inputBuffer, table!!)
        inputBuffer.rewind()
        val preDone = SystemClock.elapsedRealtimeNanos()

        val outputBuffer = output!!
        outputBuffer.rewind()
        interpreter.run(inputBuffer, outputBuffer)
        val inferDone = SystemClock.elapsedRealtimeNanos()

        outputBuffer.rewind()
        val classMap = OutputDecoder.classMap(outputBuffer, contract.output)
        val end = SystemClock.elapsedRealtimeNanos()
        return Result(classMap, model, Geometry.uprightSize(frame, rotationDegrees), mode, transform,
            Timings((preDone - start) / 1e6, (inferDone - preDone) / 1e6, (end - inferDone) / 1e6))
    }

    override fun close() {
        interpreter?.close()
        interpreter = null
        gpu?.close()
        gpu = null
        nnapi?.close()
        nnapi = null
    }

    /** Assets for the core's loader: text for the contract, a memory map for the model. */
    private class AndroidAssets(private val assets: AssetManager) : AssetSource {
        private val names: Set<String> by lazy { assets.list("")?.toSet() ?: emptySet() }

        override fun readText(name: String): String? {
            if (name !in names) return null
            return assets.open(name).bufferedReader().use { it.readText() }
        }

        override fun readBuffer(name: String): ByteBuffer? {
            if (name !in names) return null
            return try {
                assets.openFd(name).use { fd ->
                    FileInputStream(fd.fileDescriptor).channel.use { channel ->
                        channel.map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
                    }
                }
            } catch (e: IOException) {
                // Stored compressed (noCompress missing): copy it into a direct buffer instead.
                val bytes = assets.open(name).use { it.readBytes() }
                ByteBuffer.allocateDirect(bytes.size).order(ByteOrder.nativeOrder()).put(bytes)
                    .also { it.rewind() }
            }
        }
    }
}
