import CoreImage
import SegKitCore
import SwiftUI
import UIKit

/// What the screen draws: the core's DemoState plus the pictures made from results.
struct UiState {
    var demo = DemoState()
    /// Live view: the coloured class map at model resolution and how to place it.
    var mask: MaskImage?
    /// Photo: the picture with the mask blended in (core Overlay.compose).
    var photo: CGImage?
}

struct MaskImage {
    let image: CGImage
    let upright: SegKitCore.Size
    let model: SegKitCore.Size
    let mode: FitMode
}

/// Turns segmentation results into UI state; every state change goes through the core's `reduce`.
@MainActor
final class DemoViewModel: ObservableObject {
    @Published private(set) var ui = UiState()
    let camera = CameraFeed()
    private var segmenter: Segmenter?
    private var fps = FpsMeter()
    private var lastPhoto: (pixels: [RGBA], size: SegKitCore.Size, classMap: [Int], model: SegKitCore.Size, transform: Affine)?

    init() {
        camera.onFrame = { [weak self] pixels in
            // On the camera queue: hand the frame to the segmenter, which drops it if busy.
            let image = CIImage(cvPixelBuffer: pixels)
            Task { @MainActor in self?.segmentCameraFrame(image) }
        }
        load(.neuralEngine)
        send(.cameraStatus(CameraFeed.status))
    }

    private func send(_ event: DemoEvent) { ui.demo = reduce(ui.demo, event) }

    /// Loads (or reloads, for another compute-units choice) the model off the main thread.
    func load(_ units: ComputeUnits) {
        Task.detached(priority: .userInitiated) { [weak self] in
            let result = Segmenter.load(computeUnits: units)
            await self?.apply(result, units: units)
        }
    }

    private func apply(_ result: Result<Segmenter, SegmentationError>, units: ComputeUnits) {
        switch result {
        case .success(let segmenter):
            self.segmenter = segmenter
            send(.computeUnitsChosen(units))
            send(.modelLoaded(segmenter.contract))
        case .failure(.computeUnitsUnavailable(let failed, let detail)) where units != .cpu:
            send(.computeUnitsFailed(failed, detail))
            load(.cpu)
        case .failure(let error):
            send(.modelFailed(error))
        }
        fps.reset()
    }

    func startCamera() {
        switch CameraFeed.status {
        case .granted:
            send(.cameraStatus(.granted))
            if let problem = camera.start() { send(.frameFailed(.cameraUnavailable(problem))) }
        case .notDetermined:
            CameraFeed.requestAccess { [weak self] status in
                self?.send(.cameraStatus(status))
                if status == .granted { self?.startCamera() }
            }
        case .denied:
            send(.cameraStatus(.denied))
        }
    }

    func choose(_ source: Source) {
        send(.sourceChosen(source))
        if source == .camera { startCamera() } else { camera.stop(); ui.mask = nil }
        fps.reset()
    }

    func setOpacity(_ value: Float) {
        send(.opacityChanged(value))
        if ui.demo.source == .photo { renderPhoto() }
    }

    /// For the slider and picker bindings (`$model.opacity`, `$model.computeUnits`).
    var opacity: Double {
        get { Double(ui.demo.opacity) }
        set { setOpacity(Float(newValue)) }
    }

    var computeUnits: ComputeUnits {
        get { ui.demo.computeUnits }
        set { load(newValue) }
    }

    func dismissNotice() { send(.noticeDismissed) }

    private func segmentCameraFrame(_ image: CIImage) {
        guard ui.demo.canSegmentCamera, let segmenter else { return }
        segmenter.segmentIfIdle(image, orientation: .up, mode: .centerCrop) { result in
            Task { @MainActor [weak self] in self?.showCamera(result) }
        }
    }

    private func showCamera(_ result: Result<SegmentationResult, SegmentationError>) {
        guard ui.demo.source == .camera else { return }
        switch result {
        case .failure(let error): handle(error)
        case .success(let r):
            guard let segmenter else { return }
            let colors = Overlay.colorize(r.classMap, colors: segmenter.contract.classes.colors, opacity: 1)
            if let image = PixelBuffers.cgImage(colors, width: r.model.width, height: r.model.height) {
                ui.mask = MaskImage(image: image, upright: r.upright, model: r.model, mode: r.mode)
            }
            send(.frameSegmented(classMap: r.classMap, timings: r.timings, fps: fps.tick(CACurrentMediaTime())))
        }
    }

    func segmentPhoto(_ data: Data) {
        choose(.photo)
        guard let image = UIImage(data: data), let upright = PixelBuffers.upright(image),
              let cg = PixelBuffers.cgImage(upright.pixels, width: upright.size.width, height: upright.size.height) else {
            send(.frameFailed(.imageUnreadable("not an image this device can decode")))
            return
        }
        guard let segmenter else { return }
        // Letterbox: the whole photo is segmented, nothing is cut away.
        let queued = segmenter.segmentIfIdle(CIImage(cgImage: cg), orientation: .up, mode: .letterbox) { result in
            Task { @MainActor [weak self] in
                switch result {
                case .failure(let error): self?.handle(error)
                case .success(let r):
                    self?.lastPhoto = (upright.pixels, upright.size, r.classMap, r.model, r.frameToModel)
                    self?.send(.frameSegmented(classMap: r.classMap, timings: r.timings, fps: 0))
                    self?.renderPhoto()
                }
            }
        }
        if !queued { send(.frameFailed(.inferenceFailed("the model is busy; try again"))) }
    }

    private func renderPhoto() {
        guard let last = lastPhoto, let segmenter else { return }
        let blended = Overlay.compose(photo: last.pixels, photoSize: last.size, classMap: last.classMap, model: last.model,
                                      frameToModel: last.transform, colors: segmenter.contract.classes.colors,
                                      opacity: ui.demo.opacity)
        ui.photo = PixelBuffers.cgImage(blended, width: last.size.width, height: last.size.height)
    }

    private func handle(_ error: SegmentationError) {
        if case .computeUnitsUnavailable(let units, let detail) = error {
            send(.computeUnitsFailed(units, detail))
            load(.cpu)
        } else {
            send(.frameFailed(error))
        }
    }
}
