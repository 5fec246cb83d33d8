// The browser demo's platform-free core: frames in, class maps and overlays out, driven only by
// the model contract that `python -m conversion.export` writes next to every artifact.
//
// It does exactly what conversion/contract.py's `prepare_input` and `read_output` do (float32
// arithmetic, round half to even), as the Android core does in Kotlin, so the tensor the page
// feeds LiteRT.js is bit-identical to the one the exporter's parity check used. No DOM here:
// tests/core.test.mjs runs it in Node against the Android core's golden vectors.

export const SUPPORTED_SCHEMA_VERSION = 1;
export const INPUT_DTYPES = ['float32', 'int8', 'uint8'];
export const OUTPUT_DTYPES = ['float32', 'int8', 'uint8', 'int32'];
const RANGES = { int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767] };
const ARRAYS = { float32: Float32Array, int8: Int8Array, uint8: Uint8Array, int16: Int16Array,
                 int32: Int32Array };
const f32 = Math.fround;

/** numpy's np.round: half to even. */
export function rint(x) {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** Why this page cannot run a model with `contract`, or null when it can. */
export function unsupportedReason(contract) {
  if (!contract || typeof contract !== 'object') return 'the contract is not a JSON object';
  if (contract.schema_version !== SUPPORTED_SCHEMA_VERSION) {
    return `contract schema version ${contract.schema_version}; this page reads version ` +
      `${SUPPORTED_SCHEMA_VERSION} (re-export with this checkout, or update the page)`;
  }
  const input = contract.input ?? {};
  const output = contract.output ?? {};
  if (input.kind !== 'tensor') return `input kind '${input.kind}' (this page feeds tensors)`;
  if (input.layout !== 'NHWC' && input.layout !== 'NCHW') return `input layout ${input.layout}`;
  if (!INPUT_DTYPES.includes(input.dtype)) return `input dtype ${input.dtype}`;
  if (!input.quantization && input.dtype !== 'float32' &&
      !(input.dtype === 'uint8' && input.normalization?.in_model)) {
    return `a ${input.dtype} input without quantization parameters`;
  }
  if (!OUTPUT_DTYPES.includes(output.dtype)) return `output dtype ${output.dtype}`;
  if (output.semantics === 'class_map' ? output.layout !== 'NHW'
      : output.layout !== 'NHWC' && output.layout !== 'NCHW') {
    return `output ${output.semantics} in layout ${output.layout}`;
  }
  return null;
}

/** {height, width, channels} of an input or output spec, whatever its layout. */
export function dims(spec) {
  const at = (axis) => spec.shape[spec.layout.indexOf(axis)];
  return { height: at('H'), width: at('W'), channels: spec.layout.includes('C') ? at('C') : 1 };
}

/** The value a pixel (0..255) of channel `c` becomes before quantization. */
function normalized(pixel, c, norm) {
  if (norm.in_model) return pixel;
  return f32(f32(f32(pixel * f32(norm.pixel_scale)) - f32(norm.mean[c])) / f32(norm.std[c]));
}

/**
 * The 3 x 256 stored values a pixel can become, per channel, for `spec`; a frame is then one
 * look-up per sample.
 */
export function lookupTable(spec) {
  const quant = spec.quantization;
  return [0, 1, 2].map((c) => {
    const table = new Float64Array(256);
    for (let p = 0; p < 256; p++) {
      const x = normalized(p, c, spec.normalization);
      if (quant) {
        const [low, high] = RANGES[spec.dtype];
        const q = rint(f32(x / f32(quant.scale))) + quant.zero_point;
        table[p] = Math.min(high, Math.max(low, q));
      } else {
        table[p] = x;
      }
    }
    return table;
  });
}

/**
 * RGB or RGBA pixels (row-major, already the model's width x height) -> the typed array the
 * model takes, in its layout and dtype.
 */
export function encodeInput(pixels, width, height, spec, table = lookupTable(spec)) {
  const { height: h, width: w } = dims(spec);
  if (width !== w || height !== h) {
    throw new Error(`frame is ${width}x${height}, the model takes ${w}x${h}`);
  }
  const stride = pixels.length === w * h * 4 ? 4 : 3;
  if (pixels.length !== w * h * stride) throw new Error('pixel array does not match the frame');
  const out = new ARRAYS[spec.dtype](w * h * 3);
  const planar = spec.layout === 'NCHW';
  const plane = w * h;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      out[planar ? c * plane + i : i * 3 + c] = table[c][pixels[i * stride + c]];
    }
  }
  return out;
}

/** (q - zero_point) * scale in float32, as numpy dequantizes. */
export function dequantize(q, quant) {
  return f32(f32(q - quant.zero_point) * f32(quant.scale));
}

/**
 * The class map (row-major H x W) of a raw output: argmax over the class axis, first maximum
 * wins as in numpy; quantized logits are compared as stored integers (dequantization is
 * increasing, so it cannot change the winner); a class-map output is read as is.
 */
export function classMap(raw, spec) {
  const { height: h, width: w, channels: c } = dims(spec);
  const plane = h * w;
  const out = new Uint8Array(plane);
  if (spec.semantics === 'class_map') {
    for (let i = 0; i < plane; i++) out[i] = raw[i];
    return out;
  }
  const nchw = spec.layout === 'NCHW';
  for (let p = 0; p < plane; p++) {
    let best = 0;
    let bestValue = nchw ? raw[p] : raw[p * c];
    for (let k = 1; k < c; k++) {
      const value = nchw ? raw[k * plane + p] : raw[p * c + k];
      if (value > bestValue) { best = k; bestValue = value; }
    }
    out[p] = best;
  }
  return out;
}

/**
 * The frame with the class map blended in at `opacity` (0..1), as RGBA: "source over" with
 * the Android core's rounding; classes outside the palette leave the pixel as it was.
 */
export function overlay(framePixels, classes, palette, opacity) {
  const alpha = Math.round(Math.min(1, Math.max(0, opacity)) * 255);
  const stride = framePixels.length === classes.length * 4 ? 4 : 3;
  const out = new Uint8ClampedArray(classes.length * 4);
  const mix = (b, o) => Math.floor((b * (255 - alpha) + o * alpha + 127) / 255);
  for (let i = 0; i < classes.length; i++) {
    const colour = palette[classes[i]];
    for (let c = 0; c < 3; c++) {
      const base = framePixels[i * stride + c];
      out[i * 4 + c] = colour ? mix(base, colour[c]) : base;
    }
    out[i * 4 + 3] = 255;
  }
  return out;
}

/** Legend rows for the classes present, largest first: {index, name, color, fraction}. */
export function legend(classes, names, palette) {
  const counts = new Array(names.length).fill(0);
  for (const k of classes) if (k < counts.length) counts[k]++;
  return counts.map((count, index) => ({ index, name: names[index], color: palette[index],
                                         fraction: count / classes.length }))
    .filter((row) => row.fraction > 0)
    .sort((a, b) => b.fraction - a.fraction);
}

/** '#rrggbb' of an [r, g, b] palette entry. */
export function hex([r, g, b]) {
  return '#' + [r, g, b].map((v) => v.toString(16).padStart(2, '0')).join('');
}
