import PhotosUI
import SegKitCore
import SwiftUI

/// The screen. It draws `model.ui`; decisions live in the core's reducer and the view model.
struct ContentView: View {
    @ObservedObject var model: DemoViewModel
    @State private var picked: PhotosPickerItem?
    @Environment(\.openURL) private var openURL

    var body: some View {
        let demo = model.ui.demo
        VStack(spacing: 0) {
            ZStack(alignment: .top) {
                Color.black
                if let error = demo.blockingError {
                    ErrorCard(error: error, openSettings: { openURL(URL(string: UIApplication.openSettingsURLString)!) })
                } else if demo.source == .camera {
                    CameraPreview(session: model.camera.session)
                    if let mask = model.ui.mask { MaskLayer(mask: mask, opacity: demo.opacity) }
                } else if let photo = model.ui.photo {
                    Image(decorative: photo, scale: 1).resizable().scaledToFit()
                } else {
                    Text("Pick a photo to segment it.").foregroundColor(.white).frame(maxHeight: .infinity)
                }
                if let notice = demo.notice {
                    HStack {
                        Text(notice).font(.footnote)
                        Button("OK") { model.dismissNotice() }
                    }
                    .padding(10).background(.thinMaterial, in: RoundedRectangle(cornerRadius: 10)).padding()
                }
            }
            .clipped()
            Controls(model: model, picked: $picked)
        }
        .onAppear { model.choose(.camera) }
        .onChange(of: picked) { item in
            guard let item else { return }
            Task { @MainActor in
                if let data = try? await item.loadTransferable(type: Data.self) { model.segmentPhoto(data) }
            }
        }
    }
}

/// The mask at model resolution, stretched over the part of the preview the model saw.
private struct MaskLayer: View {
    let mask: MaskImage
    let opacity: Float

    var body: some View {
        GeometryReader { geo in
            // The preview layer's .resizeAspectFill is a centre crop of the upright frame.
            let r = Geometry.modelRectInView(upright: mask.upright, model: mask.model, modelMode: mask.mode,
                                             view: SegKitCore.Size(Int(geo.size.width), Int(geo.size.height)),
                                             viewMode: .centerCrop)
            Image(decorative: mask.image, scale: 1)
                .resizable()
                .interpolation(.none)
                .frame(width: CGFloat(r.width), height: CGFloat(r.height))
                .position(x: CGFloat(r.left + r.width / 2), y: CGFloat(r.top + r.height / 2))
                .opacity(Double(opacity))
        }
        .allowsHitTesting(false)
    }
}

private struct ErrorCard: View {
    let error: SegmentationError
    let openSettings: () -> Void

    var body: some View {
        VStack(alignment: .leading, spacing: 12) {
            Text(error.title).font(.title2.bold())
            Text(error.message).font(.body)
            if error == .cameraPermissionDenied { Button("Open Settings", action: openSettings) }
        }
        .padding(20)
        .background(.regularMaterial, in: RoundedRectangle(cornerRadius: 14))
        .padding(24)
        .frame(maxHeight: .infinity)
    }
}

private struct Controls: View {
    @ObservedObject var model: DemoViewModel
    @Binding var picked: PhotosPickerItem?

    var body: some View {
        let demo = model.ui.demo
        VStack(alignment: .leading, spacing: 8) {
            if let t = demo.timings {
                Text(String(format: "pre %.1f · infer %.1f · post %.1f ms · %.1f FPS", t.preMs, t.inferMs, t.postMs, demo.fps))
                    .font(.caption.monospacedDigit())
            } else {
                Text("pre – · infer – · post – ms").font(.caption)
            }
            HStack {
                Text("Opacity").font(.caption)
                Slider(value: $model.opacity, in: 0...1)
            }
            HStack {
                Button("Camera") { model.choose(.camera) }.buttonStyle(.bordered).tint(demo.source == .camera ? .accentColor : .gray)
                PhotosPicker(selection: $picked, matching: .images) { Text("Photo") }
                    .buttonStyle(.bordered).tint(demo.source == .photo ? .accentColor : .gray)
                Picker("Compute units", selection: $model.computeUnits) {
                    ForEach(ComputeUnits.allCases, id: \.self) { Text($0.label).tag($0) }
                }
                .pickerStyle(.segmented)
            }
            Legend(entries: demo.legend)
        }
        .padding(12)
        .background(Color(uiColor: .secondarySystemBackground))
    }
}

/// The contract's class names and colours; classes in the current frame are bold with their share.
private struct Legend: View {
    let entries: [LegendEntry]

    var body: some View {
        ScrollView(.horizontal, showsIndicators: false) {
            HStack(spacing: 10) {
                ForEach(entries, id: \.index) { entry in
                    HStack(spacing: 4) {
                        RoundedRectangle(cornerRadius: 2)
                            .fill(Color(red: Double(entry.color.r) / 255, green: Double(entry.color.g) / 255,
                                        blue: Double(entry.color.b) / 255))
                            .frame(width: 12, height: 12)
                        Text(entry.fraction > 0 ? "\(entry.name) \(Int((entry.fraction * 100).rounded()))%" : entry.name)
                            .font(.caption2)
                            .fontWeight(entry.fraction > 0 ? .bold : .regular)
                            .opacity(entry.fraction > 0 ? 1 : 0.5)
                    }
                }
            }
        }
    }
}
