import AVFoundation
import SegKitCore
import SwiftUI

/// The back camera: a preview layer for the screen and BGRA frames for the segmenter.
/// Frames are delivered upright for the portrait UI (the connection rotates them), so the
/// segmenter gets orientation `.up`.
final class CameraFeed: NSObject, AVCaptureVideoDataOutputSampleBufferDelegate {
    let session = AVCaptureSession()
    private let output = AVCaptureVideoDataOutput()
    private let frames = DispatchQueue(label: "dev.segkit.demo.camera")
    private var configured = false
    /// Called on the camera queue (not the main actor).
    var onFrame: (@Sendable (CVPixelBuffer) -> Void)?

    static var status: CameraStatus {
        switch AVCaptureDevice.authorizationStatus(for: .video) {
        case .authorized: return .granted
        case .notDetermined: return .notDetermined
        default: return .denied  // denied or restricted
        }
    }

    static func requestAccess(_ done: @escaping @MainActor (CameraStatus) -> Void) {
        AVCaptureDevice.requestAccess(for: .video) { granted in
            Task { @MainActor in done(granted ? .granted : .denied) }
        }
    }

    /// Starts the session; returns a reason when there is no usable camera (e.g. the simulator).
    func start() -> String? {
        if !configured {
            if let problem = configure() { return problem }
            configured = true
        }
        frames.async { if !self.session.isRunning { self.session.startRunning() } }
        return nil
    }

    func stop() {
        frames.async { if self.session.isRunning { self.session.stopRunning() } }
    }

    private func configure() -> String? {
        guard let device = AVCaptureDevice.default(.builtInWideAngleCamera, for: .video, position: .back) else {
            return "no back camera"
        }
        session.beginConfiguration()
        defer { session.commitConfiguration() }
        session.sessionPreset = .vga640x480  // 4:3, plenty for a 64x128 .. 512x1024 model
        do {
            let input = try AVCaptureDeviceInput(device: device)
            guard session.canAddInput(input) else { return "cannot use the camera input" }
            session.addInput(input)
        } catch {
            return error.localizedDescription
        }
        output.videoSettings = [kCVPixelBufferPixelFormatTypeKey as String: kCVPixelFormatType_32BGRA]
        output.alwaysDiscardsLateVideoFrames = true
        output.setSampleBufferDelegate(self, queue: frames)
        guard session.canAddOutput(output) else { return "cannot read camera frames" }
        session.addOutput(output)
        if let connection = output.connection(with: .video) {
            if #available(iOS 17.0, *) {
                if connection.isVideoRotationAngleSupported(90) { connection.videoRotationAngle = 90 }
            } else if connection.isVideoOrientationSupported {
                connection.videoOrientation = .portrait
            }
        }
        return nil
    }

    func captureOutput(_ output: AVCaptureOutput, didOutput sampleBuffer: CMSampleBuffer,
                       from connection: AVCaptureConnection) {
        guard let pixels = CMSampleBufferGetImageBuffer(sampleBuffer) else { return }
        onFrame?(pixels)
    }
}

/// AVCaptureVideoPreviewLayer in SwiftUI, filling its frame (a centre crop, like the overlay maths assumes).
struct CameraPreview: UIViewRepresentable {
    let session: AVCaptureSession

    final class PreviewView: UIView {
        override class var layerClass: AnyClass { AVCaptureVideoPreviewLayer.self }
        var previewLayer: AVCaptureVideoPreviewLayer { layer as! AVCaptureVideoPreviewLayer }
    }

    func makeUIView(context: Context) -> PreviewView {
        let view = PreviewView()
        view.previewLayer.session = session
        view.previewLayer.videoGravity = .resizeAspectFill
        return view
    }

    func updateUIView(_ uiView: PreviewView, context: Context) {}
}
