import CoreGraphics
import CoreVideo
import SegKitCore
import UIKit

/// Conversions between the core's RGBA pixels and Apple image types.
enum PixelBuffers {
    /// BGRA pixel buffer -> RGBA pixels.
    static func rgba(_ buffer: CVPixelBuffer) -> [RGBA] {
        CVPixelBufferLockBaseAddress(buffer, .readOnly)
        defer { CVPixelBufferUnlockBaseAddress(buffer, .readOnly) }
        let width = CVPixelBufferGetWidth(buffer), height = CVPixelBufferGetHeight(buffer)
        let rowBytes = CVPixelBufferGetBytesPerRow(buffer)
        guard let base = CVPixelBufferGetBaseAddress(buffer)?.assumingMemoryBound(to: UInt8.self) else { return [] }
        var out = [RGBA]()
        out.reserveCapacity(width * height)
        for y in 0..<height {
            let row = base + y * rowBytes
            for x in 0..<width {
                out.append(RGBA(r: row[4 * x + 2], g: row[4 * x + 1], b: row[4 * x], a: 255))
            }
        }
        return out
    }

    /// RGBA pixels (alpha 0 or 255, or already premultiplied) -> CGImage.
    static func cgImage(_ pixels: [RGBA], width: Int, height: Int) -> CGImage? {
        var bytes = [UInt8]()
        bytes.reserveCapacity(pixels.count * 4)
        for p in pixels { bytes += [p.r, p.g, p.b, p.a] }
        guard let provider = CGDataProvider(data: Data(bytes) as CFData) else { return nil }
        return CGImage(width: width, height: height, bitsPerComponent: 8, bitsPerPixel: 32, bytesPerRow: width * 4,
                       space: CGColorSpaceCreateDeviceRGB(),
                       bitmapInfo: CGBitmapInfo(rawValue: CGImageAlphaInfo.premultipliedLast.rawValue),
                       provider: provider, decode: nil, shouldInterpolate: false, intent: .defaultIntent)
    }

    /// A picked photo drawn upright (its EXIF orientation applied) at most `maxSide` pixels.
    static func upright(_ image: UIImage, maxSide: CGFloat = 1280) -> (pixels: [RGBA], size: SegKitCore.Size)? {
        let scale = min(1, maxSide / max(image.size.width, image.size.height))
        let width = Int((image.size.width * scale).rounded()), height = Int((image.size.height * scale).rounded())
        guard width > 0, height > 0 else { return nil }
        var bytes = [UInt8](repeating: 0, count: width * height * 4)
        let drawn: Bool = bytes.withUnsafeMutableBytes { raw in
            guard let context = CGContext(data: raw.baseAddress, width: width, height: height, bitsPerComponent: 8,
                                          bytesPerRow: width * 4, space: CGColorSpaceCreateDeviceRGB(),
                                          bitmapInfo: CGImageAlphaInfo.noneSkipLast.rawValue) else { return false }
            // UIKit drawing honours imageOrientation; flip to UIKit's top-left origin first.
            context.translateBy(x: 0, y: CGFloat(height))
            context.scaleBy(x: 1, y: -1)
            UIGraphicsPushContext(context)
            image.draw(in: CGRect(x: 0, y: 0, width: width, height: height))
            UIGraphicsPopContext()
            return true
        }
        guard drawn else { return nil }
        let pixels = stride(from: 0, to: bytes.count, by: 4).map { RGBA(r: bytes[$0], g: bytes[$0 + 1], b: bytes[$0 + 2], a: 255) }
        return (pixels, SegKitCore.Size(width, height))
    }
}
