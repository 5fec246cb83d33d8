import Foundation

/// Frames in, class maps out, exactly as conversion/contract.py's `prepare_input` and
/// `read_output` do it (Float arithmetic, round half to even) — the same rules as the Android
/// core (android_demo/core/.../Tensors.kt), checked against the same golden vectors.
public enum InputEncoder {
    static let ranges: [String: (Float, Float)] = ["int8": (-128, 127), "uint8": (0, 255)]

    /// One pixel value (0...255) of channel `c` as the float the model (or quantizer) sees.
    public static func normalize(_ pixel: Int, channel: Int, _ norm: Normalization) -> Float {
        let x = Float(pixel)
        if norm.inModel { return x }
        return (x * Float(norm.pixelScale) - Float(norm.mean[channel])) / Float(norm.std[channel])
    }

    /// q = clamp(round_half_even(x / scale) + zero_point) in the dtype's range.
    public static func quantize(_ x: Float, _ q: Quantization, dtype: String) -> Int {
        guard let range = ranges[dtype] else { preconditionFailure("cannot quantize to \(dtype)") }
        let (low, high) = range
        let rounded = (x / Float(q.scale)).rounded(.toNearestOrEven) + Float(q.zeroPoint)
        return Int(min(high, max(low, rounded)))
    }

    /// Letterbox padding: the training mean (zero after normalisation), or black.
    public static func paddingColor(_ norm: Normalization) -> RGBA {
        if norm.inModel { return RGBA(r: 0, g: 0, b: 0, a: 255) }
        let c = (0..<3).map { UInt8(max(0, min(255, (norm.mean[$0] / norm.pixelScale).rounded()))) }
        return RGBA(r: c[0], g: c[1], b: c[2], a: 255)
    }

    /// Quantized input (int8 or uint8) in the spec's layout, from RGBA pixels at the model size.
    public static func encodeQuantized(_ pixels: [RGBA], width: Int, height: Int, spec: TensorSpec) -> [Int] {
        precondition(width == spec.width && height == spec.height, "frame is not the model size")
        guard let norm = spec.normalization else { preconditionFailure("\(spec.name) is not an input") }
        let table: [[Int]] = (0..<3).map { c in
            (0..<256).map { (p: Int) -> Int in
                if let q = spec.quantization { return quantize(normalize(p, channel: c, norm), q, dtype: spec.dtype) }
                return p  // uint8 pixels for a model that normalises itself
            }
        }
        return layout(pixels, width: width, height: height, planar: spec.layout == "NCHW") { c, v in table[c][v] }
    }

    /// Float input in the spec's layout (e.g. a Core ML tensor input).
    public static func encodeFloat(_ pixels: [RGBA], width: Int, height: Int, spec: TensorSpec) -> [Float] {
        precondition(width == spec.width && height == spec.height, "frame is not the model size")
        guard let norm = spec.normalization else { preconditionFailure("\(spec.name) is not an input") }
        let table: [[Float]] = (0..<3).map { c in (0..<256).map { normalize($0, channel: c, norm) } }
        return layout(pixels, width: width, height: height, planar: spec.layout == "NCHW") { c, v in table[c][v] }
    }

    static func layout<T>(_ pixels: [RGBA], width: Int, height: Int, planar: Bool,
                          _ value: (Int, Int) -> T) -> [T] {
        let count = width * height
        var out = [T]()
        out.reserveCapacity(count * 3)
        if planar {
            for c in 0..<3 { for i in 0..<count { out.append(value(c, Int(pixels[i].channel(c)))) } }
        } else {
            for i in 0..<count { for c in 0..<3 { out.append(value(c, Int(pixels[i].channel(c)))) } }
        }
        return out
    }
}

public enum OutputDecoder {
    /// (q - zero_point) * scale, in Float like numpy.
    public static func dequantize(_ q: Int, _ quant: Quantization) -> Float {
        Float(q - quant.zeroPoint) * Float(quant.scale)
    }

    /// Dequantized logits of a raw int8/uint8 tensor, in its own layout.
    public static func logits(raw: [UInt8], spec: TensorSpec) -> [Float] {
        let signed = spec.dtype == "int8"
        return raw.map { byte in
            let stored = signed ? Int(Int8(bitPattern: byte)) : Int(byte)
            if let q = spec.quantization { return dequantize(stored, q) }
            return Float(stored)
        }
    }

    /// Argmax straight on stored integers: dequantization is increasing, so the winner is the same.
    public static func argmaxQuantized(raw: [UInt8], spec: TensorSpec) -> [Int] {
        let signed = spec.dtype == "int8"
        let (h, w, c) = (spec.height, spec.width, spec.channels)
        let plane = h * w
        let nchw = spec.layout == "NCHW"
        var out = [Int](repeating: 0, count: plane)
        for p in 0..<plane {
            var best = 0
            var bestValue = Int.min
            for k in 0..<c {
                let byte = raw[nchw ? k * plane + p : p * c + k]
                let v = signed ? Int(Int8(bitPattern: byte)) : Int(byte)
                if v > bestValue {
                    bestValue = v
                    best = k
                }
            }
            out[p] = best
        }
        return out
    }

    /// First maximum wins, as numpy.
    public static func argmaxNHWC(_ logits: [Float], height: Int, width: Int, classes: Int) -> [Int] {
        (0..<(height * width)).map { p in
            var best = 0
            for k in 1..<classes where logits[p * classes + k] > logits[p * classes + best] { best = k }
            return best
        }
    }

    public static func argmaxNCHW(_ logits: [Float], classes: Int, height: Int, width: Int) -> [Int] {
        let plane = height * width
        return (0..<plane).map { p in
            var best = 0
            for k in 1..<classes where logits[k * plane + p] > logits[best * plane + p] { best = k }
            return best
        }
    }

    /// The class map from float logits in the spec's layout (Core ML outputs, after conversion to Float).
    public static func classMap(logits: [Float], spec: TensorSpec) -> [Int] {
        spec.layout == "NCHW"
            ? argmaxNCHW(logits, classes: spec.channels, height: spec.height, width: spec.width)
            : argmaxNHWC(logits, height: spec.height, width: spec.width, classes: spec.channels)
    }
}
