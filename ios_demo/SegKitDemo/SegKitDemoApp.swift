import SwiftUI

@main
struct SegKitDemoApp: App {
    @StateObject private var model = DemoViewModel()

    var body: some Scene {
        WindowGroup {
            ContentView(model: model)
                .preferredColorScheme(.dark)
        }
    }
}
