// The JS core against the golden vectors the Kotlin core is tested with
// (android_demo/core/src/test/resources/golden/, written by android_demo/tools/make_golden.py
// from a real int8 TFLite export): the input tensor and the class map must match bit for bit.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { classMap, dequantize, encodeInput, legend, overlay, rint, unsupportedReason }
  from '../core.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const GOLDEN = process.env.SEGKIT_GOLDEN_DIR ??
  path.resolve(here, '../../android_demo/core/src/test/resources/golden');
const read = (name) => readFileSync(path.join(GOLDEN, name));
const meta = JSON.parse(read('golden.json'));
const contract = JSON.parse(read('contract.json'));
const frame = new Uint8Array(read(meta.input.file));
const bytes = (name, Type) => { const b = read(name); return new Type(b.buffer, b.byteOffset, b.length / Type.BYTES_PER_ELEMENT); };

test('round half to even, as numpy', () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, 2.6].map(rint), [0, 2, 2, 0, -2, 2, 3]);
});

test('the golden contract is one this page runs', () => {
  assert.equal(unsupportedReason(contract), null);
  assert.match(unsupportedReason({ ...contract, schema_version: 2 }), /schema version 2/);
});

test('preprocessing reproduces the int8 input tensor bit for bit', () => {
  const [, height, width] = contract.input.shape;
  const tensor = encodeInput(frame, width, height, contract.input);
  assert.ok(tensor instanceof Int8Array);
  assert.deepEqual(tensor, bytes(meta.input_tensor.file, Int8Array));
});

test('the class map from the raw int8 output matches bit for bit', () => {
  const classes = classMap(bytes(meta.output.file, Int8Array), contract.output);
  assert.deepEqual(classes, new Uint8Array(read(meta.expected.file)));
});

test('dequantization matches Python bit for bit', () => {
  const raw = bytes(meta.output.file, Int8Array);
  const [, , width, channels] = contract.output.shape;
  for (const { y, x, logits } of meta.dequantized_samples) {
    const got = [];
    for (let k = 0; k < channels; k++) {
      got.push(dequantize(raw[(y * width + x) * channels + k], contract.output.quantization));
    }
    assert.deepEqual(got, logits.map(Math.fround), `logits at (${y}, ${x})`);
  }
});

test('the legend counts the classes present and the overlay keeps untouched pixels', () => {
  const classes = new Uint8Array(read(meta.expected.file));
  const rows = legend(classes, contract.classes.names, contract.classes.palette);
  const present = meta.classes_present;
  assert.deepEqual(Object.fromEntries(rows.map((r) => [r.name, r.fraction * classes.length])),
                   present);
  const blended = overlay(frame, classes, contract.classes.palette, 0);
  for (let i = 0; i < 30; i++) assert.equal(blended[i * 4], frame[i * 3]);
  const opaque = overlay(frame, classes, contract.classes.palette, 1);
  assert.deepEqual([...opaque.slice(0, 3)], contract.classes.palette[classes[0]]);
});
