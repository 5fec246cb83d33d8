// The page: picks a model, a backend and a frame source, and draws what the Segmenter returns.
// It reads the export folder's index (/models/index.json) and each model's contract; the
// class names, the palette and all pre/post-processing come from that contract.
import { hex, legend, overlay } from './core.js';
import { Segmenter, webgpuAvailable } from './runtime.js';

const $ = (id) => document.getElementById(id);
const view = $('view');
const context = view.getContext('2d', { willReadFrequently: true });
const scratch = document.createElement('canvas');
const state = { segmenter: null, contract: null, frame: null, result: null, camera: null,
                fps: [], errors: [] };
// ?threads=1: LiteRT's threaded WebAssembly (uses every core the browser reports).
const threads = new URLSearchParams(location.search).get('threads') === '1';

function status(text, error = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', error);
  if (error) state.errors.push(text);
}

async function json(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

/** An image, video frame or canvas resized to the model's input: its RGBA pixels. */
function modelPixels(source, width, height) {
  scratch.width = width;
  scratch.height = height;
  const ctx = scratch.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(source, 0, 0, width, height);
  return ctx.getImageData(0, 0, width, height).data;
}

function draw(pixels, classes) {
  const { width, height } = state.segmenter;
  const blended = overlay(pixels, classes, state.contract.classes.palette,
                          Number($('opacity').value));
  scratch.width = width;
  scratch.height = height;
  scratch.getContext('2d').putImageData(new ImageData(blended, width, height), 0, 0);
  context.imageSmoothingEnabled = false;
  context.drawImage(scratch, 0, 0, view.width, view.height);
  $('legend').replaceChildren(...legend(classes, state.contract.classes.names,
                                        state.contract.classes.palette).map((row) => {
    const item = document.createElement('li');
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = hex(row.color);
    item.append(swatch, `${row.name} ${(row.fraction * 100).toFixed(1)} %`);
    return item;
  }));
}

async function segmentPixels(pixels) {
  const started = performance.now();
  const result = await state.segmenter.segment(pixels);
  state.fps.push(performance.now() - started);
  state.fps = state.fps.slice(-20);
  const fps = 1000 / (state.fps.reduce((a, b) => a + b, 0) / state.fps.length);
  const t = result.times;
  $('times').textContent = `pre ${t.pre.toFixed(1)} ms · inference ${t.infer.toFixed(1)} ms · ` +
    `post ${t.post.toFixed(1)} ms · ${fps.toFixed(1)} FPS (${state.segmenter.backend})`;
  state.result = { ...result, backend: state.segmenter.backend };
  return result;
}

async function segmentSource(source) {
  if (!state.segmenter) return;
  const pixels = modelPixels(source, state.segmenter.width, state.segmenter.height);
  state.frame = source;
  const { classes } = await segmentPixels(pixels);
  draw(pixels, classes);
}

async function loadModel() {
  const file = $('model').value;
  state.segmenter?.delete();
  state.segmenter = null;
  try {
    state.contract = await json(`./models/${file}.json`);
    state.segmenter = await Segmenter.create(`./models/${file}`, state.contract,
                                             { accelerator: $('backend').value, threads });
    const fallback = $('backend').value !== state.segmenter.backend ? ' (no WebGPU device ' +
      'here: fell back to wasm)' : '';
    status(`${file}: ${state.contract.artifact.precision}, input ${state.contract.input.dtype} ` +
           `${state.segmenter.width}x${state.segmenter.height}, on ` +
           `${state.segmenter.backend}${fallback}`);
    if (state.frame) await segmentSource(state.frame);
  } catch (error) {
    status(`cannot load ${file}: ${error.message}`, true);
  }
}

async function loadSample() {
  const image = new Image();
  image.src = `./samples/${$('sample').value}`;
  await image.decode();
  await segmentSource(image);
}

async function startCamera() {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true });
    const video = $('video');
    video.srcObject = stream;
    await video.play();
    state.camera = stream;
    const loop = async () => {
      if (!state.camera) return;
      await segmentSource(video);
      requestAnimationFrame(loop);
    };
    loop();
  } catch (error) {
    status(`webcam: ${error.message}`, true);
  }
}

async function start() {
  if (!webgpuAvailable()) $('backend').querySelector('[value=webgpu]').textContent += ' (none)';
  const index = await json('./models/index.json').catch(() => ({ models: [] }));
  if (!index.models.length) {
    status(`no model in the export folder ${index.folder ?? ''}: run make demo, then ` +
           'make web-demo', true);
    return;
  }
  $('model').replaceChildren(...index.models.map(({ file, precision }) =>
    new Option(`${precision}: ${file}`, file)));
  const preferred = new URLSearchParams(location.search).get('model');
  if (preferred) $('model').value = preferred;
  const samples = await json('./samples/index.json').catch(() => []);
  $('sample').replaceChildren(...samples.map((name) => new Option(name, name)));
  $('model').onchange = loadModel;
  $('backend').onchange = loadModel;
  $('sample').onchange = loadSample;
  $('opacity').oninput = () => state.frame && segmentSource(state.frame);
  $('file').onchange = async () => {
    const image = new Image();
    image.src = URL.createObjectURL($('file').files[0]);
    await image.decode();
    await segmentSource(image);
  };
  $('camera').onclick = startCamera;
  await loadModel();
  if (samples.length) await loadSample();
}

// For tests and benchmarks: run the loaded model on raw RGB bytes at its input size.
window.segkit = {
  state,
  ready: start().then(() => true, (error) => { status(error.message, true); return false; }),
  async segmentRaw(rgb) {
    const { classes, times } = await segmentPixels(rgb);
    draw(rgb, classes);
    return { classes: Array.from(classes), times, backend: state.segmenter.backend };
  },
  async load(file, accelerator = 'wasm') {
    $('model').value = file;
    $('backend').value = accelerator;
    await loadModel();
    return state.segmenter ? { backend: state.segmenter.backend } : null;
  },
};
