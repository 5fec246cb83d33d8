package dev.segkit.core

/**
 * Everything that can go wrong in the demo, as values with the sentence the screen shows.
 *
 * The app never crashes on these: loading, permission and inference code return a Problem,
 * the state reducer (DemoState.kt) decides what to show, and the UI prints `message`.
 */
sealed class Problem {
    abstract val title: String
    abstract val message: String

    data class ModelMissing(val asset: String) : Problem() {
        override val title get() = "Model not found"
        override val message
            get() = "The model file '$asset' is not in the app's assets. Export a model, run " +
                "`make android-assets` to copy the latest export into the app, and rebuild."
    }

    data class ContractMissing(val asset: String) : Problem() {
        override val title get() = "Model contract not found"
        override val message
            get() = "The model contract '$asset' is missing from the app's assets. It is " +
                "written next to every exported model; `make android-assets` copies both."
    }

    data class ContractUnreadable(val detail: String) : Problem() {
        override val title get() = "Model contract is invalid"
        override val message get() = "The bundled model contract cannot be used: $detail."
    }

    data class UnsupportedSchema(val found: Int, val supported: Int) : Problem() {
        override val title get() = "Unsupported model contract version"
        override val message: String
            get() {
                val age = if (found > supported) "newer" else "older"
                return "This app reads model contract version $supported, but the bundled " +
                    "contract is version $found ($age). Re-export the model with a segkit " +
                    "version that writes version $supported, or update the app."
            }
    }

    data class UnsupportedModel(val detail: String) : Problem() {
        override val title get() = "Model not supported by this app"
        override val message get() = "The bundled model cannot run in this app: $detail."
    }

    data class ModelContractMismatch(val detail: String) : Problem() {
        override val title get() = "Model and contract do not match"
        override val message
            get() = "The model file and its contract come from different exports ($detail). " +
                "Copy both from the same export with `make android-assets`."
    }

    data class CameraPermissionDenied(val canAskAgain: Boolean) : Problem() {
        override val title get() = "Camera permission denied"
        override val message: String
            get() = if (canAskAgain) "The live view needs the camera. Tap 'Allow camera' to " +
                "grant it, or pick a photo from the gallery instead."
            else "Camera access was denied permanently. Enable it in Settings > Apps > " +
                "SegKit Demo > Permissions, or pick a photo from the gallery instead."
    }

    data class CameraUnavailable(val detail: String) : Problem() {
        override val title get() = "Camera unavailable"
        override val message
            get() = "The camera could not be started ($detail). Pick a photo from the gallery instead."
    }

    data class DelegateUnavailable(val delegate: Delegate, val detail: String) : Problem() {
        override val title get() = "${delegate.label} unavailable"
        override val message
            get() = "${delegate.label} could not run this model ($detail); using " +
                "${Delegate.CPU.label} instead."
    }

    data class InferenceFailed(val detail: String) : Problem() {
        override val title get() = "Inference failed"
        override val message get() = "Segmentation failed: $detail."
    }

    data class ImageUnreadable(val detail: String) : Problem() {
        override val title get() = "Image cannot be read"
        override val message get() = "The selected image cannot be decoded ($detail)."
    }
}

/** Thrown by the parsers; carries the Problem that the caller turns into state. */
class ProblemException(val problem: Problem) : Exception(problem.message)

/** Where inference runs. CPU uses LiteRT's default XNNPACK kernels. */
enum class Delegate(val label: String) {
    CPU("CPU (XNNPACK)"),
    GPU("GPU"),
    NNAPI("NNAPI");
}
