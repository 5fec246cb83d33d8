import Foundation

/// Rotation, resize and letterbox maths, the same as the Android core's Geometry.kt.
/// Continuous coordinates (a W x H image spans [0, W] x [0, H]), y down, clockwise rotations
/// (EXIF orientation / CGImagePropertyOrientation say how far to turn the stored image).
public struct Size: Equatable {
    public let width: Int
    public let height: Int
    public init(_ width: Int, _ height: Int) {
        self.width = width
        self.height = height
    }
}

public struct Rect: Equatable {
    public let left: Float, top: Float, right: Float, bottom: Float
    public init(_ left: Float, _ top: Float, _ right: Float, _ bottom: Float) {
        self.left = left
        self.top = top
        self.right = right
        self.bottom = bottom
    }
    public var width: Float { right - left }
    public var height: Float { bottom - top }
}

public enum FitMode: Equatable {
    case stretch, letterbox, centerCrop
}

/// x' = a x + b y + tx, y' = c x + d y + ty. (CGAffineTransform names these a, c, b, d.)
public struct Affine: Equatable {
    public let a: Float, b: Float, tx: Float, c: Float, d: Float, ty: Float

    public init(_ a: Float, _ b: Float, _ tx: Float, _ c: Float, _ d: Float, _ ty: Float) {
        self.a = a
        self.b = b
        self.tx = tx
        self.c = c
        self.d = d
        self.ty = ty
    }

    public static let identity = Affine(1, 0, 0, 0, 1, 0)
    public static func scale(_ sx: Float, _ sy: Float, _ tx: Float = 0, _ ty: Float = 0) -> Affine {
        Affine(sx, 0, tx, 0, sy, ty)
    }

    public func mapX(_ x: Float, _ y: Float) -> Float { a * x + b * y + tx }
    public func mapY(_ x: Float, _ y: Float) -> Float { c * x + d * y + ty }

    /// This transform applied after `first`.
    public func after(_ first: Affine) -> Affine {
        Affine(a * first.a + b * first.c, a * first.b + b * first.d, a * first.tx + b * first.ty + tx,
               c * first.a + d * first.c, c * first.b + d * first.d, c * first.tx + d * first.ty + ty)
    }

    public func inverse() -> Affine {
        let det = a * d - b * c
        precondition(det != 0, "transform is not invertible")
        let (ia, ib, ic, id) = (d / det, -b / det, -c / det, a / det)
        return Affine(ia, ib, -(ia * tx + ib * ty), ic, id, -(ic * tx + id * ty))
    }

    public func mapRect(_ r: Rect) -> Rect {
        let xs = [mapX(r.left, r.top), mapX(r.right, r.top), mapX(r.left, r.bottom), mapX(r.right, r.bottom)]
        let ys = [mapY(r.left, r.top), mapY(r.right, r.top), mapY(r.left, r.bottom), mapY(r.right, r.bottom)]
        return Rect(xs.min()!, ys.min()!, xs.max()!, ys.max()!)
    }
}

public enum Geometry {
    public static func normalizeRotation(_ degrees: Int) -> Int {
        let r = ((degrees % 360) + 360) % 360
        precondition(r % 90 == 0, "rotation must be a multiple of 90 degrees, got \(degrees)")
        return r
    }

    public static func uprightSize(_ source: Size, rotation: Int) -> Size {
        normalizeRotation(rotation) % 180 == 0 ? source : Size(source.height, source.width)
    }

    public static func rotation(_ source: Size, degrees: Int) -> Affine {
        let (w, h) = (Float(source.width), Float(source.height))
        switch normalizeRotation(degrees) {
        case 0: return .identity
        case 90: return Affine(0, -1, h, 1, 0, 0)
        case 180: return Affine(-1, 0, w, 0, -1, h)
        default: return Affine(0, 1, 0, -1, 0, w)
        }
    }

    public static func fit(_ source: Size, into target: Size, mode: FitMode) -> Affine {
        let sx = Float(target.width) / Float(source.width)
        let sy = Float(target.height) / Float(source.height)
        if mode == .stretch { return .scale(sx, sy) }
        let s = mode == .letterbox ? min(sx, sy) : max(sx, sy)
        return .scale(s, s, (Float(target.width) - Float(source.width) * s) / 2,
                      (Float(target.height) - Float(source.height) * s) / 2)
    }

    public static func frameToModel(_ frame: Size, rotation: Int, model: Size, mode: FitMode) -> Affine {
        fit(uprightSize(frame, rotation: rotation), into: model, mode: mode)
            .after(self.rotation(frame, degrees: rotation))
    }

    /// Where the whole model canvas lands in a view showing the upright frame with `viewMode`
    /// (AVCaptureVideoPreviewLayer .resizeAspectFill = centerCrop, scaledToFit = letterbox).
    public static func modelRectInView(upright: Size, model: Size, modelMode: FitMode,
                                       view: Size, viewMode: FitMode) -> Rect {
        fit(upright, into: view, mode: viewMode).after(fit(upright, into: model, mode: modelMode).inverse())
            .mapRect(Rect(0, 0, Float(model.width), Float(model.height)))
    }

    /// EXIF orientation (= CGImagePropertyOrientation raw value) -> clockwise degrees.
    public static func exifToDegrees(_ orientation: Int) -> Int {
        switch orientation {
        case 3, 4: return 180
        case 5, 6: return 90
        case 7, 8: return 270
        default: return 0
        }
    }
}
