import Foundation

/// An 8-bit RGBA pixel (the layout of a CGImage with premultipliedLast alpha when a is 0 or 255).
public struct RGBA: Equatable {
    public var r: UInt8, g: UInt8, b: UInt8, a: UInt8
    public init(r: UInt8, g: UInt8, b: UInt8, a: UInt8 = 255) {
        self.r = r
        self.g = g
        self.b = b
        self.a = a
    }
    public static let clear = RGBA(r: 0, g: 0, b: 0, a: 0)

    func channel(_ c: Int) -> UInt8 { c == 0 ? r : (c == 1 ? g : b) }

    public var hex: String { String(format: "#%02X%02X%02X", r, g, b) }
}

public struct LegendEntry: Equatable {
    public let index: Int
    public let name: String
    public let color: RGBA
    public let fraction: Float
}

public enum Overlay {
    /// The class map in the contract's colours at `opacity`; unknown indices stay clear.
    public static func colorize(_ classMap: [Int], colors: [RGBA], opacity: Float) -> [RGBA] {
        let alpha = UInt8((max(0, min(1, opacity)) * 255).rounded())
        let table = colors.map { RGBA(r: $0.r, g: $0.g, b: $0.b, a: alpha) }
        return classMap.map { $0 >= 0 && $0 < table.count ? table[$0] : .clear }
    }

    /// `over` on an opaque `base` (source over), rounded to nearest like the Android core.
    public static func blend(_ base: RGBA, _ over: RGBA) -> RGBA {
        let a = Int(over.a)
        if a == 0 { return RGBA(r: base.r, g: base.g, b: base.b, a: 255) }
        if a == 255 { return over }
        func mix(_ b: UInt8, _ o: UInt8) -> UInt8 { UInt8((Int(b) * (255 - a) + Int(o) * a + 127) / 255) }
        return RGBA(r: mix(base.r, over.r), g: mix(base.g, over.g), b: mix(base.b, over.b), a: 255)
    }

    /// A photo with the mask blended in at the photo's resolution (nearest model pixel).
    public static func compose(photo: [RGBA], photoSize: Size, classMap: [Int], model: Size,
                               frameToModel t: Affine, colors: [RGBA], opacity: Float) -> [RGBA] {
        let table = colorize(Array(0..<colors.count), colors: colors, opacity: opacity)
        var out = photo
        for y in 0..<photoSize.height {
            let cy = Float(y) + 0.5
            for x in 0..<photoSize.width {
                let cx = Float(x) + 0.5
                let mx = Int(t.mapX(cx, cy).rounded(.down))
                let my = Int(t.mapY(cx, cy).rounded(.down))
                let i = y * photoSize.width + x
                if mx < 0 || my < 0 || mx >= model.width || my >= model.height {
                    out[i].a = 255
                } else {
                    let k = classMap[my * model.width + mx]
                    out[i] = blend(photo[i], k >= 0 && k < table.count ? table[k] : .clear)
                }
            }
        }
        return out
    }

    public static func histogram(_ classMap: [Int], numClasses: Int) -> [Int] {
        var counts = [Int](repeating: 0, count: numClasses)
        for k in classMap where k >= 0 && k < numClasses { counts[k] += 1 }
        return counts
    }

    public static func legend(_ classes: ClassInfo, classMap: [Int]?) -> [LegendEntry] {
        let counts = classMap.map { histogram($0, numClasses: classes.numClasses) }
        let total = classMap?.count ?? 0
        let colors = classes.colors
        return classes.names.enumerated().map { i, name in
            let share: Float = (counts == nil || total == 0) ? 0 : Float(counts![i]) / Float(total)
            return LegendEntry(index: i, name: name, color: colors[i], fraction: share)
        }
    }
}
