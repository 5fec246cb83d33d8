import Foundation

/// The screen's state as one value and the only function that changes it (mirrors the Android
/// core's DemoState.kt). The app's view model feeds events in; SwiftUI views only draw.
public struct Timings: Equatable {
    public let preMs: Double, inferMs: Double, postMs: Double
    public init(preMs: Double, inferMs: Double, postMs: Double) {
        self.preMs = preMs
        self.inferMs = inferMs
        self.postMs = postMs
    }
    public var totalMs: Double { preMs + inferMs + postMs }
}

public enum Source: Equatable { case camera, photo }

public enum ModelStatus: Equatable {
    case loading
    case ready(ModelContract)
    case failed(SegmentationError)
}

/// AVCaptureDevice.authorizationStatus, platform-free.
public enum CameraStatus: Equatable {
    case notDetermined, granted, denied
}

public struct DemoState: Equatable {
    public var model: ModelStatus = .loading
    public var camera: CameraStatus = .notDetermined
    public var source: Source = .camera
    public var computeUnits: ComputeUnits = .neuralEngine
    public var opacity: Float = 0.5
    public var legend: [LegendEntry] = []
    public var timings: Timings?
    public var fps: Double = 0
    public var notice: String?
    public var frameError: SegmentationError?

    public init() {}

    /// What blocks the current view, shown instead of the overlay.
    public var blockingError: SegmentationError? {
        if case .failed(let error) = model { return error }
        if source == .camera && camera == .denied { return .cameraPermissionDenied }
        return frameError
    }

    public var canSegmentCamera: Bool {
        if case .ready = model { return camera == .granted && source == .camera }
        return false
    }
}

public enum DemoEvent {
    case modelLoaded(ModelContract)
    case modelFailed(SegmentationError)
    case cameraStatus(CameraStatus)
    case sourceChosen(Source)
    case computeUnitsChosen(ComputeUnits)
    case computeUnitsFailed(ComputeUnits, String)
    case opacityChanged(Float)
    case frameSegmented(classMap: [Int], timings: Timings, fps: Double)
    case frameFailed(SegmentationError)
    case noticeDismissed
}

public func reduce(_ state: DemoState, _ event: DemoEvent) -> DemoState {
    var s = state
    switch event {
    case .modelLoaded(let contract):
        s.model = .ready(contract)
        s.legend = Overlay.legend(contract.classes, classMap: nil)
        s.frameError = nil
    case .modelFailed(let error):
        s.model = .failed(error)
        s.legend = []
    case .cameraStatus(let status):
        s.camera = status
    case .sourceChosen(let source):
        s.source = source
        s.timings = nil
        s.fps = 0
        s.frameError = nil
    case .computeUnitsChosen(let units):
        s.computeUnits = units
        s.notice = nil
    case .computeUnitsFailed(let units, let detail):
        s.computeUnits = .cpu
        s.notice = SegmentationError.computeUnitsUnavailable(units, detail).message
    case .opacityChanged(let opacity):
        s.opacity = max(0, min(1, opacity))
    case .frameSegmented(let classMap, let timings, let fps):
        s.timings = timings
        s.fps = fps
        s.frameError = nil
        if case .ready(let contract) = s.model { s.legend = Overlay.legend(contract.classes, classMap: classMap) }
    case .frameFailed(let error):
        s.frameError = error
    case .noticeDismissed:
        s.notice = nil
    }
    return s
}

/// Frames per second over a sliding window of completion times (seconds).
public struct FpsMeter {
    private var times: [Double] = []
    private let window: Int

    public init(window: Int = 30) { self.window = window }

    public mutating func tick(_ now: Double) -> Double {
        times.append(now)
        if times.count > window { times.removeFirst(times.count - window) }
        return fps
    }

    public var fps: Double {
        guard times.count >= 2, let first = times.first, let last = times.last, last > first else { return 0 }
        return Double(times.count - 1) / (last - first)
    }

    public mutating func reset() { times.removeAll() }
}
