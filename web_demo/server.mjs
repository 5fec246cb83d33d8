// A static server for the demo page, on 127.0.0.1, with nothing fetched from elsewhere.
//
//   node server.mjs                          # the newest export under ../artifacts
//   node server.mjs --models ../artifacts/quickstart_student --port 8000
//
// Serves web_demo/ at /, LiteRT.js from node_modules at /vendor/, and one export folder at
// /models/ (with /models/index.json: every .tflite there whose model contract parses; the
// others are listed under `problems`, never served as models). Only GET and HEAD are answered
// (405 otherwise); a path that is malformed (bad %-encoding, a NUL) gets 400, and one that
// leads outside its folder, by `..` or a symbolic link, gets 404. No request stops the server.
// Every response carries COOP/COEP (cross-origin isolation, which threaded WebAssembly
// needs) and .wasm goes out as application/wasm.
import { createReadStream, existsSync, readdirSync, readFileSync, realpathSync,
         statSync } from 'node:fs';
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
const METHODS = ['GET', 'HEAD'];

/** The newest folder under `root` that holds an exported .tflite with its contract. */
export function newestExport(root) {
  if (!existsSync(root)) return null;
  const found = [];
  const walk = (dir) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // unreadable, or gone meanwhile: not an export
    }
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.tflite.json')) {
        try {
          found.push([statSync(full).mtimeMs, full]);
        } catch { /* a dangling link */ }
      }
    }
  };
  walk(root);
  if (!found.length) return null;
  found.sort((a, b) => b[0] - a[0]);
  return path.dirname(found[0][1]);
}

/** [contract, null] for the contract `name` in `dir`, or [null, why it cannot describe a
 *  model]: unreadable, not JSON, or without the blocks the page reads. */
function readContract(dir, name) {
  let contract;
  try {
    contract = JSON.parse(readFileSync(path.join(dir, name), 'utf8'));
  } catch (error) {
    return [null, `unreadable model contract: ${error.message.split('\n')[0]}`];
  }
  const isObject = (value) => value !== null && typeof value === 'object' &&
    !Array.isArray(value);
  if (!isObject(contract) || !['artifact', 'input', 'output', 'classes'].every(
    (key) => isObject(contract[key]))) {
    return [null, 'not a model contract (no artifact, input, output and classes blocks)'];
  }
  return [contract, null];
}

/** {models: [{file, precision, contract}], folder, problems: [{file, problem}]} for every
 *  .tflite in `dir` with a contract; a contract that does not parse is a problem, not a model. */
export function modelIndex(dir) {
  if (!dir || !existsSync(dir)) {
    return { models: [], folder: dir, problems: [], problem: 'no export folder' };
  }
  let names;
  try {
    names = readdirSync(dir);
  } catch (error) {
    return { models: [], folder: dir, problems: [], problem: `unreadable: ${error.code}` };
  }
  const models = [];
  const problems = [];
  for (const file of names.filter((name) => name.endsWith('.tflite')).sort()) {
    if (!names.includes(`${file}.json`)) continue;
    const [contract, problem] = readContract(dir, `${file}.json`);
    if (problem) problems.push({ file, problem });
    else models.push({ file, precision: String(contract.artifact.precision ?? '?'),
                       contract: `${file}.json` });
  }
  return { models, folder: dir, problems };
}

/** The request's path, %-decoded; null when the encoding is malformed or it holds a NUL. */
export function decodePath(url) {
  const raw = String(url ?? '').split(/[?#]/, 1)[0];
  let decoded;
  try {
    decoded = decodeURIComponent(raw.startsWith('/') ? raw :
                                 new URL(raw, 'http://x').pathname);
  } catch {
    return null;
  }
  return decoded.startsWith('/') && !decoded.includes('\0') ? decoded : null;
}

/** True when `file` lies strictly inside `root` (a separator, not a shared name prefix). */
export function isInside(root, file) {
  const relative = path.relative(root, file);
  return relative !== '' && !path.isAbsolute(relative) &&
    relative.split(path.sep)[0] !== '..';
}

function resolve(urlPath, models) {
  for (const [prefix, root] of Object.entries(MOUNTS)) {
    if (urlPath.startsWith(prefix)) return [root, urlPath.slice(prefix.length)];
  }
  if (urlPath.startsWith('/models/')) return [models, urlPath.slice('/models/'.length)];
  return [HERE, urlPath.slice(1) || 'index.html'];
}

/** The real path of the file `urlPath` names, or null when there is none inside its root
 *  (links are followed first, so one pointing outside the root is refused too). */
export function locate(urlPath, models) {
  const [root, relative] = resolve(urlPath, models);
  if (!root) return null;
  const file = path.resolve(root, relative);
  if (!isInside(path.resolve(root), file)) return null;
  try {
    const real = realpathSync(file);
    if (!isInside(realpathSync(root), real) || !statSync(real).isFile()) return null;
    return real;
  } catch {
    return null; // missing, a dangling link, unreadable
  }
}

function answer(request, response, status, headers, body = '') {
  response.writeHead(status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
  response.end(request.method === 'HEAD' ? undefined : body);
}

function handle(request, response, models) {
  const headers = { 'Cross-Origin-Opener-Policy': 'same-origin',
                    'Cross-Origin-Embedder-Policy': 'require-corp',
                    'Cache-Control': 'no-store' };
  if (!METHODS.includes(request.method)) {
    answer(request, response, 405, { ...headers, Allow: METHODS.join(', ') },
           `method not allowed: ${request.method}\n`);
    return;
  }
  const urlPath = decodePath(request.url);
  if (urlPath === null) {
    answer(request, response, 400, headers, 'bad request: malformed path\n');
    return;
  }
  if (urlPath === '/models/index.json') {
    response.writeHead(200, { ...headers, 'Content-Type': MIME['.json'] });
    response.end(request.method === 'HEAD' ? undefined : JSON.stringify(modelIndex(models)));
    return;
  }
  const file = locate(urlPath, models);
  if (!file) {
    answer(request, response, 404, headers, 'not found\n');
    return;
  }
  const type = MIME[path.extname(file)] ?? 'application/octet-stream';
  if (request.method === 'HEAD') {
    response.writeHead(200, { ...headers, 'Content-Type': type });
    response.end();
    return;
  }
  const stream = createReadStream(file);
  stream.once('open', () => {
    response.writeHead(200, { ...headers, 'Content-Type': type });
    stream.pipe(response);
  });
  stream.once('error', () => { // gone or unreadable between the check and the read
    if (!response.headersSent) answer(request, response, 404, headers, 'not found\n');
    else response.destroy();
  });
}

/** Start serving; resolves to the http.Server (its port: server.address().port). */
export function serve({ models = null, port = 0, host = '127.0.0.1' } = {}) {
  const server = http.createServer((request, response) => {
    try {
      handle(request, response, models);
    } catch (error) { // whatever went wrong, this request fails and the server stays up
      console.error(`error: ${request.method} ${request.url}: ${error.message}`);
      if (!response.headersSent) response.writeHead(500, { 'Content-Type': 'text/plain' });
      response.end();
    }
  });
  return new Promise((done, fail) => {
    server.once('error', fail);
    try {
      server.listen(port, host, () => done(server));
    } catch (error) { // a bad port is thrown, not emitted
      fail(error);
    }
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const option = (name, fallback) => {
    const index = args.indexOf(name);
    return index >= 0 ? args[index + 1] : fallback;
  };
  const models = option('--models', newestExport(path.join(HERE, '..', 'artifacts')));
  const index = modelIndex(models);
  const skipped = index.problems.map(({ file, problem }) => `${file}.json: ${problem}`);
  if (!index.models.length) {
    console.error(`error: no exported .tflite with a readable contract in ${models ?? 'artifacts/'}` +
      (skipped.length ? ` (${skipped.join('; ')})` : '') + '; run `make demo` (or `python -m ' +
      'conversion.export --target tflite`) first, or pass --models DIR');
    process.exit(2);
  }
  for (const line of skipped) console.error(`warning: not served as a model: ${line}`);
  const server = await serve({ models, port: Number(option('--port', 8000)) }).catch((e) => {
    console.error(`error: cannot listen: ${e.message}`);
    process.exit(2);
  });
  console.log(`segkit web demo: http://127.0.0.1:${server.address().port}/ ` +
              `(models from ${path.resolve(models)}; Ctrl-C stops)`);
}
