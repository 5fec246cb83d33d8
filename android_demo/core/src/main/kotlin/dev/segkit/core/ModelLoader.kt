package dev.segkit.core

import java.nio.ByteBuffer
import java.security.MessageDigest

/**
 * Where the model and its contract come from. On Android this wraps the AssetManager
 * (memory-mapping the uncompressed .tflite); in tests it is a map of names to bytes.
 */
interface AssetSource {
    /** The asset's text, or null when there is no such asset. */
    fun readText(name: String): String?

    /** The asset's bytes (positioned at 0), or null when there is no such asset. */
    fun readBuffer(name: String): ByteBuffer?
}

/** The outcome of loading: a contract plus the model bytes, or the Problem to show. */
sealed class LoadResult {
    data class Loaded(val contract: ModelContract, val model: ByteBuffer) : LoadResult()
    data class Failed(val problem: Problem) : LoadResult()
}

object ModelLoader {
    /**
     * Missing files first (the model, then its contract), then the contract itself (schema
     * version before anything else), what this app supports, and finally proof that model and
     * contract belong together: the contract records the artifact's size and sha256.
     */
    fun load(
        source: AssetSource,
        modelAsset: String = AppContract.MODEL_ASSET,
        contractAsset: String = AppContract.CONTRACT_ASSET,
        verifyHash: Boolean = true
    ): LoadResult {
        val text = source.readText(contractAsset)
        val model = source.readBuffer(modelAsset)
        if (model == null) return LoadResult.Failed(Problem.ModelMissing(modelAsset))
        if (text == null) return LoadResult.Failed(Problem.ContractMissing(contractAsset))
        val contract = try {
            ModelContract.parse(text)
        } catch (e: ProblemException) {
            return LoadResult.Failed(e.problem)
        }
        unsupportedReason(contract)?.let { return LoadResult.Failed(Problem.UnsupportedModel(it)) }
        val size = model.remaining().toLong()
        if (size != contract.artifact.sizeBytes) {
            return LoadResult.Failed(Problem.ModelContractMismatch(
                "the model has $size bytes, the contract says ${contract.artifact.sizeBytes}"))
        }
        if (verifyHash) {
            val digest = sha256Hex(model)
            if (digest != contract.artifact.sha256) {
                return LoadResult.Failed(Problem.ModelContractMismatch(
                    "sha256 ${digest.take(12)}… differs from ${contract.artifact.sha256.take(12)}…"))
            }
        }
        return LoadResult.Loaded(contract, model)
    }

    /** Hex sha256 of the buffer's remaining bytes; the buffer's position is left alone. */
    fun sha256Hex(buffer: ByteBuffer): String {
        val digest = MessageDigest.getInstance("SHA-256")
        digest.update(buffer.duplicate())
        val hex = StringBuilder()
        for (b in digest.digest()) {
            val v = b.toInt() and 0xFF
            hex.append("0123456789abcdef"[v shr 4]).append("0123456789abcdef"[v and 15])
        }
        return hex.toString()
    }
}
