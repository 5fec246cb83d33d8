package dev.segkit.demo

import android.Manifest
import android.content.Intent
import android.content.pm.PackageManager
import android.net.Uri
import android.os.Bundle
import android.provider.Settings
import androidx.activity.ComponentActivity
import androidx.activity.compose.setContent
import androidx.activity.result.PickVisualMediaRequest
import androidx.activity.result.contract.ActivityResultContracts
import androidx.activity.viewModels
import androidx.camera.view.PreviewView
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.darkColorScheme
import androidx.compose.runtime.Composable
import androidx.compose.runtime.DisposableEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.remember
import androidx.compose.ui.Modifier
import androidx.compose.ui.platform.LocalContext
import androidx.compose.ui.viewinterop.AndroidView
import androidx.core.content.ContextCompat
import androidx.lifecycle.compose.LocalLifecycleOwner
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import dev.segkit.core.Source
import dev.segkit.demo.ui.DemoActions
import dev.segkit.demo.ui.DemoScreen

/** Wires system dialogs (camera permission, photo picker, settings) to the ViewModel. */
class MainActivity : ComponentActivity() {
    private val viewModel: SegmentationViewModel by viewModels()
    private var askedForCamera = false

    private val cameraPermission = registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        askedForCamera = true
        viewModel.onPermission(granted, shouldShowRequestPermissionRationale(Manifest.permission.CAMERA), true)
    }

    private val pickImage = registerForActivityResult(ActivityResultContracts.PickVisualMedia()) { uri: Uri? ->
        if (uri != null) viewModel.onGalleryImage(uri)
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        askedForCamera = savedInstanceState?.getBoolean(ASKED, false) ?: false
        val actions = DemoActions(
            selectSource = viewModel::selectSource,
            selectDelegate = viewModel::selectDelegate,
            setOpacity = viewModel::setOpacity,
            pickImage = {
                pickImage.launch(PickVisualMediaRequest(ActivityResultContracts.PickVisualMedia.ImageOnly))
            },
            requestCamera = { askCamera() },
            openSettings = {
                startActivity(Intent(Settings.ACTION_APPLICATION_DETAILS_SETTINGS,
                    Uri.fromParts("package", packageName, null)))
            },
            dismissNotice = viewModel::dismissNotice
        )
        setContent {
            MaterialTheme(colorScheme = darkColorScheme()) {
                val state by viewModel.state.collectAsStateWithLifecycle()
                DemoScreen(state, actions) { CameraPreview(viewModel) }
            }
        }
    }

    override fun onResume() {
        super.onResume()
        // Also picks up a permission granted in Settings while the app was in the background.
        val granted = ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) ==
            PackageManager.PERMISSION_GRANTED
        if (!granted && !askedForCamera && viewModel.state.value.demo.source == Source.CAMERA) {
            askCamera()
        } else {
            viewModel.onPermission(granted, shouldShowRequestPermissionRationale(Manifest.permission.CAMERA), askedForCamera)
        }
    }

    private fun askCamera() {
        askedForCamera = true
        cameraPermission.launch(Manifest.permission.CAMERA)
    }

    override fun onSaveInstanceState(outState: Bundle) {
        super.onSaveInstanceState(outState)
        outState.putBoolean(ASKED, askedForCamera)
    }

    private companion object {
        const val ASKED = "asked_for_camera"
    }
}

/** The CameraX preview; frames go to the ViewModel's analyzer on its inference executor. */
@Composable
private fun CameraPreview(viewModel: SegmentationViewModel) {
    val context = LocalContext.current
    val owner = LocalLifecycleOwner.current
    val previewView = remember { PreviewView(context).apply { scaleType = PreviewView.ScaleType.FILL_CENTER } }
    AndroidView(factory = { previewView }, modifier = Modifier.fillMaxSize())
    DisposableEffect(owner) {
        val unbind = CameraBinder(context).bind(owner, previewView, viewModel.inferenceExecutor,
            { image -> viewModel.onCameraFrame(image) }, viewModel::onCameraError)
        onDispose { unbind() }
    }
}
