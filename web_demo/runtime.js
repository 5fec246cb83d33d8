// The one module that touches LiteRT.js: load the runtime once, compile a model, segment.
//
// The page's UI only draws what `Segmenter.segment` returns: the class map and the pre /
// inference / post times. Pre- and post-processing are core.js's, driven by the contract.
import { Tensor, getWebGpuDevice, isWebGPUSupported, loadAndCompile, loadLiteRt }
  from '@litertjs/core';

import { classMap, encodeInput, lookupTable, unsupportedReason } from './core.js';

let runtime = null;

/** LiteRT's WebAssembly, loaded once: the threaded build (2+ threads, which needs the
 * server's cross-origin isolation) or the single-threaded one. Its native log lines go to
 * console.debug: they are info, and at console.error they would read as failures. */
export function initRuntime({ threads = false,
                              wasmDir = new URL('./vendor/litertjs-core/wasm/', location.href) }
                            = {}) {
  if (!runtime) {
    globalThis.Module = { print: (s) => console.debug(s), printErr: (s) => console.debug(s) };
    runtime = loadLiteRt(wasmDir.href ?? String(wasmDir),
                         threads && globalThis.crossOriginIsolated ? { threads: true } : {});
  }
  return runtime;
}

/** Whether a WebGPU device exists here (headless Chromium with --disable-gpu has none). */
export function webgpuAvailable() {
  try {
    return isWebGPUSupported() && Boolean(getWebGpuDevice());
  } catch {
    return false;
  }
}

export class Segmenter {
  /** Compile `modelUrl` described by `contract` on 'webgpu' or 'wasm'; WebGPU falls back to
   * wasm when it has no device or cannot take the model (`backend` says which ran). */
  static async create(modelUrl, contract, { accelerator = 'wasm', threads = false } = {}) {
    const problem = unsupportedReason(contract);
    if (problem) throw new Error(`cannot run ${contract?.artifact?.file ?? modelUrl}: ${problem}`);
    await initRuntime({ threads });
    const response = await fetch(modelUrl);
    if (!response.ok) throw new Error(`model ${modelUrl}: HTTP ${response.status}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    let backend = accelerator === 'webgpu' && webgpuAvailable() ? 'webgpu' : 'wasm';
    let model;
    try {
      model = await loadAndCompile(bytes, { accelerator: backend });
    } catch (error) {
      if (backend === 'wasm') throw error;
      console.warn(`WebGPU could not take the model (${error.message}); using wasm`);
      backend = 'wasm';
      model = await loadAndCompile(bytes, { accelerator: backend });
    }
    return new Segmenter(model, contract, backend, accelerator);
  }

  constructor(model, contract, backend, requested) {
    this.model = model;
    this.contract = contract;
    this.backend = backend;
    this.requested = requested;
    this.table = lookupTable(contract.input);
    [this.height, this.width] = contract.input.layout === 'NHWC'
      ? contract.input.shape.slice(1, 3) : contract.input.shape.slice(2, 4);
  }

  /** RGB(A) pixels at the model's size -> {classes, times: {pre, infer, post} in ms}. */
  async segment(pixels) {
    const t0 = performance.now();
    const data = encodeInput(pixels, this.width, this.height, this.contract.input, this.table);
    const input = new Tensor(data, this.contract.input.shape);
    const t1 = performance.now();
    let outputs;
    try {
      outputs = await this.model.run(input);
    } finally {
      input.delete();
    }
    let raw;
    try {
      const output = outputs[0].accelerator === 'wasm' ? outputs[0]
        : await outputs[0].moveTo('wasm');
      raw = output.toTypedArray();
      if (output !== outputs[0]) output.delete();
    } finally {
      outputs.forEach((tensor) => { try { tensor.delete(); } catch { /* moved */ } });
    }
    const t2 = performance.now();
    const classes = classMap(raw, this.contract.output);
    const t3 = performance.now();
    return { classes, times: { pre: t1 - t0, infer: t2 - t1, post: t3 - t2 } };
  }

  delete() {
    this.model.delete();
  }
}
