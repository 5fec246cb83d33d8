// Drive the demo page in headless Chromium (Debian's /usr/bin/chromium, through playwright-core):
// run models on a raw frame, time them, take a screenshot. tests/test_web_demo.py and
// benchmarks/web_latency.py call it; it writes everything it saw to --out as JSON.
//
//   node tests/browser.mjs --models DIR --frame F.u8 --width 128 --height 64 \
//       --files a_fp32.tflite,a_int8.tflite --out result.json [--screenshot shot.png]
//       [--runs 10] [--threads] [--sample street_0_clear.png]
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { serve } from '../server.mjs';

const CHROMIUM = process.env.SEGKIT_CHROMIUM ?? '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
               '--disable-component-update', '--disable-sync', '--no-first-run'];

function options(argv) {
  const get = (name, fallback = undefined) => {
    const index = argv.indexOf(`--${name}`);
    return index >= 0 ? argv[index + 1] : fallback;
  };
  return { models: get('models'), frame: get('frame'), width: Number(get('width', 0)),
           height: Number(get('height', 0)), files: (get('files') ?? '').split(',')
             .filter(Boolean), out: get('out'), screenshot: get('screenshot'),
           runs: Number(get('runs', 1)), threads: argv.includes('--threads'),
           sample: get('sample') };
}

async function main() {
  const args = options(process.argv.slice(2));
  if (!existsSync(CHROMIUM)) {
    console.error(`error: no Chromium at ${CHROMIUM}: install it with \`apt-get install -y ` +
                  'chromium` (or set SEGKIT_CHROMIUM)');
    process.exit(2);
  }
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch {
    console.error('error: playwright-core is missing: run `npm ci` in web_demo/');
    process.exit(2);
  }
  const server = await serve({ models: args.models });
  const profile = mkdtempSync(path.join(os.tmpdir(), 'segkit-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: FLAGS,
    viewport: { width: 1180, height: 600 } });
  const console_ = { error: [], warning: [] };
  const result = { models: {}, console: console_ };
  try {
    const page = context.pages()[0] ?? await context.newPage();
    page.on('console', (m) => { if (m.type() in console_) console_[m.type()].push(m.text()); });
    page.on('pageerror', (e) => console_.error.push(`pageerror: ${e.message}`));
    page.on('requestfailed', (r) => console_.error.push(`requestfailed: ${r.url()}`));
    const port = server.address().port;
    const query = args.threads ? '?threads=1' : '';
    await page.goto(`http://127.0.0.1:${port}/index.html${query}`, { waitUntil: 'load' });
    result.ready = await page.evaluate(() => window.segkit.ready);
    result.crossOriginIsolated = await page.evaluate(() => crossOriginIsolated);
    // The frame crosses into the page once; each timed run then reuses it, and only the
    // first run sends its class map back (a 512x1024 frame is megabytes as JSON).
    const frame = args.frame ? Array.from(readFileSync(args.frame)) : null;
    await page.evaluate(([rgb]) => { window.segkitFrame = new Uint8Array(rgb); }, [frame]);
    for (const file of args.files) {
      const loaded = await page.evaluate(([f]) => window.segkit.load(f, 'wasm'), [file]);
      if (!loaded) {
        result.models[file] = { error: await page.evaluate(() => window.segkit.state.errors.at(-1)) };
        continue;
      }
      const runs = [];
      let classes = null;
      for (let i = 0; i < args.runs; i++) {
        const out = await page.evaluate(async ([first]) => {
          const segmented = await window.segkit.segmentRaw(window.segkitFrame);
          return first ? segmented : { times: segmented.times };
        }, [i === 0]);
        runs.push(out.times);
        classes ??= out.classes;
      }
      result.models[file] = { backend: loaded.backend, classes, times: runs };
      // Asking for WebGPU where there is none must fall back, not fail.
      result.models[file].webgpu_request = await page.evaluate(
        ([f]) => window.segkit.load(f, 'webgpu'), [file]);
    }
    if (args.sample) {
      await page.evaluate(() => { window.segkit.state.result = null; });
      await page.selectOption('#sample', args.sample);
      await page.waitForFunction(() => window.segkit.state.result !== null);
    }
    if (args.screenshot) await page.screenshot({ path: args.screenshot });
    result.status = await page.textContent('#status');
    result.errors = await page.evaluate(() => window.segkit.state.errors);
  } finally {
    await context.close();
    server.close();
    rmSync(profile, { recursive: true, force: true });
  }
  writeFileSync(args.out, JSON.stringify(result));
}

main().catch((error) => {
  console.error(`error: ${error.stack ?? error}`);
  process.exit(1);
});
