package dev.segkit.demo.ui

import androidx.compose.foundation.Canvas
import androidx.compose.foundation.Image
import androidx.compose.foundation.background
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Box
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.ExperimentalLayoutApi
import androidx.compose.foundation.layout.FlowRow
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.Spacer
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.layout.size
import androidx.compose.foundation.layout.width
import androidx.compose.foundation.shape.RoundedCornerShape
import androidx.compose.material3.Button
import androidx.compose.material3.Card
import androidx.compose.material3.FilterChip
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.Slider
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.draw.clip
import androidx.compose.ui.graphics.Color
import androidx.compose.ui.graphics.FilterQuality
import androidx.compose.ui.layout.ContentScale
import androidx.compose.ui.text.font.FontWeight
import androidx.compose.ui.unit.IntOffset
import androidx.compose.ui.unit.IntSize
import androidx.compose.ui.unit.dp
import dev.segkit.core.CameraStatus
import dev.segkit.core.Delegate
import dev.segkit.core.FitMode
import dev.segkit.core.Geometry
import dev.segkit.core.LegendEntry
import dev.segkit.core.Problem
import dev.segkit.core.Source
import dev.segkit.demo.MaskImage
import dev.segkit.demo.UiState
import kotlin.math.roundToInt
import dev.segkit.core.Size as FrameSize

/** What the user can do; the Activity wires these to the ViewModel and the system dialogs. */
class DemoActions(
    val selectSource: (Source) -> Unit,
    val selectDelegate: (Delegate) -> Unit,
    val setOpacity: (Float) -> Unit,
    val pickImage: () -> Unit,
    val requestCamera: () -> Unit,
    val openSettings: () -> Unit,
    val dismissNotice: () -> Unit
)

/** The whole screen. Draws `state`; every decision was made in the core's reducer. */
@Composable
fun DemoScreen(state: UiState, actions: DemoActions, cameraPreview: @Composable () -> Unit) {
    val demo = state.demo
    Column(Modifier.fillMaxSize().background(Color.Black)) {
        Box(Modifier.weight(1f).fillMaxWidth()) {
            val problem = demo.blockingProblem
            when {
                problem != null -> ProblemCard(problem, actions, Modifier.align(Alignment.Center))
                demo.source == Source.CAMERA -> {
                    if (demo.camera == CameraStatus.Granted) cameraPreview()
                    state.mask?.let { MaskLayer(it, demo.opacity) }
                }
                else -> state.photo?.let {
                    Image(it, contentDescription = "photo with segmentation overlay",
                        modifier = Modifier.fillMaxSize(), contentScale = ContentScale.Fit)
                } ?: Text("Pick a photo to segment it.", color = Color.White,
                    modifier = Modifier.align(Alignment.Center))
            }
            demo.notice?.let { Notice(it, actions.dismissNotice, Modifier.align(Alignment.TopCenter)) }
        }
        Controls(state, actions)
    }
}

/** The mask at model resolution, stretched over the part of the preview the model saw. */
@Composable
private fun MaskLayer(mask: MaskImage, opacity: Float) {
    Canvas(Modifier.fillMaxSize()) {
        val view = FrameSize(size.width.roundToInt(), size.height.roundToInt())
        // PreviewView's default FILL_CENTER is a centre crop of the upright frame.
        val r = Geometry.modelRectInView(mask.upright, mask.model, mask.mode, view, FitMode.CENTER_CROP)
        drawImage(
            image = mask.bitmap,
            srcOffset = IntOffset.Zero,
            srcSize = IntSize(mask.model.width, mask.model.height),
            dstOffset = IntOffset(r.left.roundToInt(), r.top.roundToInt()),
            dstSize = IntSize(r.width.roundToInt(), r.height.roundToInt()),
            alpha = opacity,
            filterQuality = FilterQuality.None
        )
    }
}

@Composable
private fun ProblemCard(problem: Problem, actions: DemoActions, modifier: Modifier) {
    Card(modifier.padding(24.dp)) {
        Column(Modifier.padding(20.dp), verticalArrangement = Arrangement.spacedBy(12.dp)) {
            Text(problem.title, style = MaterialTheme.typography.titleLarge)
            Text(problem.message, style = MaterialTheme.typography.bodyMedium)
            Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                if (problem is Problem.CameraPermissionDenied) {
                    if (problem.canAskAgain) Button(onClick = actions.requestCamera) { Text("Allow camera") }
                    else Button(onClick = actions.openSettings) { Text("Open settings") }
                }
                if (problem is Problem.CameraPermissionDenied || problem is Problem.CameraUnavailable ||
                    problem is Problem.ImageUnreadable || problem is Problem.InferenceFailed) {
                    OutlinedButton(onClick = actions.pickImage) { Text("Pick a photo") }
                }
            }
        }
    }
}

@Composable
private fun Notice(text: String, dismiss: () -> Unit, modifier: Modifier) {
    Card(modifier.padding(12.dp)) {
        Row(Modifier.padding(start = 12.dp), verticalAlignment = Alignment.CenterVertically) {
            Text(text, style = MaterialTheme.typography.bodySmall, modifier = Modifier.weight(1f, fill = false))
            TextButton(onClick = dismiss) { Text("OK") }
        }
    }
}

@OptIn(ExperimentalLayoutApi::class)
@Composable
private fun Controls(state: UiState, actions: DemoActions) {
    val demo = state.demo
    Column(
        Modifier.fillMaxWidth().background(MaterialTheme.colorScheme.surface).padding(12.dp),
        verticalArrangement = Arrangement.spacedBy(6.dp)
    ) {
        val t = demo.timings
        Text(
            if (t == null) "pre – · infer – · post – ms"
            else "pre %.1f · infer %.1f · post %.1f ms · %.1f FPS".format(t.preMs, t.inferMs, t.postMs, demo.fps),
            style = MaterialTheme.typography.labelLarge
        )
        Row(verticalAlignment = Alignment.CenterVertically) {
            Text("Opacity", style = MaterialTheme.typography.labelMedium)
            Spacer(Modifier.width(8.dp))
            Slider(value = demo.opacity, onValueChange = actions.setOpacity, valueRange = 0f..1f)
        }
        FlowRow(horizontalArrangement = Arrangement.spacedBy(6.dp)) {
            for (source in Source.values()) {
                FilterChip(selected = demo.source == source,
                    onClick = { if (source == Source.GALLERY) actions.pickImage() else actions.selectSource(source) },
                    label = { Text(if (source == Source.CAMERA) "Camera" else "Gallery") })
            }
            Spacer(Modifier.width(12.dp))
            for (delegate in Delegate.values()) {
                FilterChip(selected = demo.delegate == delegate, enabled = delegate in demo.availableDelegates,
                    onClick = { actions.selectDelegate(delegate) }, label = { Text(delegate.label) })
            }
        }
        Legend(demo.legend)
    }
}

/** The contract's class names and colours; classes in the current frame are bold with their share. */
@OptIn(ExperimentalLayoutApi::class)
@Composable
private fun Legend(entries: List<LegendEntry>) {
    FlowRow(horizontalArrangement = Arrangement.spacedBy(10.dp)) {
        for (entry in entries) {
            Row(verticalAlignment = Alignment.CenterVertically) {
                Box(Modifier.size(12.dp).clip(RoundedCornerShape(2.dp)).background(Color(entry.argb)))
                Spacer(Modifier.width(4.dp))
                val present = entry.fraction > 0f
                Text(
                    if (present) "${entry.name} ${(entry.fraction * 100).roundToInt()}%" else entry.name,
                    style = MaterialTheme.typography.labelSmall,
                    fontWeight = if (present) FontWeight.Bold else FontWeight.Normal,
                    color = if (present) MaterialTheme.colorScheme.onSurface
                    else MaterialTheme.colorScheme.onSurface.copy(alpha = 0.5f)
                )
            }
        }
    }
}
