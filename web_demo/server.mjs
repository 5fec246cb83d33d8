// A static server for the demo page, on 127.0.0.1, with nothing fetched from elsewhere.
//
//   node server.mjs                          # the newest export under ../artifacts
//   node server.mjs --models ../artifacts/quickstart_student --port 8000
//
// Serves web_demo/ at /, LiteRT.js from node_modules at /vendor/, and one export folder at
// /models/ (with /models/index.json: every .tflite there that has its model contract).
// Every response carries COOP/COEP (cross-origin isolation, which threaded WebAssembly
// needs) and .wasm goes out as application/wasm.
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MIME = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript',
               '.mjs': 'text/javascript', '.wasm': 'application/wasm',
               '.json': 'application/json', '.tflite': 'application/octet-stream',
               '.png': 'image/png', '.jpg': 'image/jpeg', '.css': 'text/css',
               '.u8': 'application/octet-stream' };
const MOUNTS = {
  '/vendor/litertjs-core/': path.join(HERE, 'node_modules', '@litertjs', 'core'),
  '/vendor/litertjs-wasm-utils/': path.join(HERE, 'node_modules', '@litertjs', 'wasm-utils'),
};

/** The newest folder under `root` that holds an exported .tflite with its contract. */
export function newestExport(root) {
  if (!existsSync(root)) return null;
  const found = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.tflite.json')) found.push(full);
    }
  };
  walk(root);
  if (!found.length) return null;
  found.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return path.dirname(found[0]);
}

/** {models: [{file, precision, contract}]} for every .tflite in `dir` with a contract. */
export function modelIndex(dir) {
  if (!dir || !existsSync(dir)) return { models: [], folder: dir, problem: 'no export folder' };
  const models = readdirSync(dir).filter((name) => name.endsWith('.tflite') &&
    existsSync(path.join(dir, `${name}.json`))).sort().map((file) => {
    const contract = JSON.parse(readFileSync(path.join(dir, `${file}.json`), 'utf8'));
    return { file, precision: contract.artifact?.precision ?? '?', contract: `${file}.json` };
  });
  return { models, folder: dir };
}

function resolve(urlPath, models) {
  for (const [prefix, root] of Object.entries(MOUNTS)) {
    if (urlPath.startsWith(prefix)) return [root, urlPath.slice(prefix.length)];
  }
  if (urlPath.startsWith('/models/')) return [models, urlPath.slice('/models/'.length)];
  return [HERE, urlPath.slice(1) || 'index.html'];
}

/** Start serving; resolves to the http.Server (its port: server.address().port). */
export function serve({ models = null, port = 0, host = '127.0.0.1' } = {}) {
  const server = http.createServer((request, response) => {
    const headers = { 'Cross-Origin-Opener-Policy': 'same-origin',
                      'Cross-Origin-Embedder-Policy': 'require-corp',
                      'Cache-Control': 'no-store' };
    const urlPath = decodeURIComponent(new URL(request.url, 'http://x').pathname);
    if (urlPath === '/models/index.json') {
      response.writeHead(200, { ...headers, 'Content-Type': MIME['.json'] });
      response.end(JSON.stringify(modelIndex(models)));
      return;
    }
    const [root, relative] = resolve(urlPath, models);
    const file = root && path.resolve(root, relative);
    if (!file || !file.startsWith(path.resolve(root)) || !existsSync(file) ||
        statSync(file).isDirectory()) {
      response.writeHead(404, headers);
      response.end(`not found: ${urlPath}`);
      return;
    }
    response.writeHead(200, { ...headers,
      'Content-Type': MIME[path.extname(file)] ?? 'application/octet-stream' });
    createReadStream(file).pipe(response);
  });
  return new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => done(server));
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const option = (name, fallback) => {
    const index = args.indexOf(name);
    return index >= 0 ? args[index + 1] : fallback;
  };
  const models = option('--models', newestExport(path.join(HERE, '..', 'artifacts')));
  if (!models || !modelIndex(models).models.length) {
    console.error('error: no exported .tflite with its contract found; run `make demo` (or ' +
      '`python -m conversion.export --target tflite`) first, or pass --models DIR');
    process.exit(2);
  }
  const server = await serve({ models, port: Number(option('--port', 8000)) }).catch((e) => {
    console.error(`error: cannot listen: ${e.message}`);
    process.exit(2);
  });
  console.log(`segkit web demo: http://127.0.0.1:${server.address().port}/ ` +
              `(models from ${path.resolve(models)}; Ctrl-C stops)`);
}
