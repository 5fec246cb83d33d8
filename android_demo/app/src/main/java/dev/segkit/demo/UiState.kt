package dev.segkit.demo

import androidx.compose.ui.graphics.ImageBitmap
import dev.segkit.core.DemoState
import dev.segkit.core.FitMode
import dev.segkit.core.Size

/** Everything the screen draws: the core's DemoState plus the pictures made from results. */
data class UiState(
    val demo: DemoState = DemoState(),
    /** Live view: the coloured class map at model resolution, drawn over the camera preview. */
    val mask: MaskImage? = null,
    /** Gallery: the photo with the mask blended in (core Overlay.compose), upright. */
    val photo: ImageBitmap? = null
)

/** A mask and what the overlay needs to place it: the upright frame and how it was fitted. */
data class MaskImage(val bitmap: ImageBitmap, val upright: Size, val model: Size, val mode: FitMode)
