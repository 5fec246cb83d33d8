// Adds int8 and int16 to @litertjs/core 2.5.3's dtype table (run by `npm ci` / `npm install`).
//
// Why: the stock 2.5.3 package (the newest on npm) refuses any model whose signature input or
// output is int8 ("Element type INT8 is not supported."): its JS wrapper lists float32, int32
// and uint8 only. The WebAssembly runtime handles int8 itself, and upstream LiteRT's main
// branch already lists int8 and int16 (litert/js/packages/core/src/datatypes.ts), unreleased.
// segkit's full-int8 TFLite model, the file the Android app ships, has int8 input and output,
// so the browser demo adds exactly those two entries. The script is idempotent and fails
// loudly if the package no longer looks like 2.5.3, so an upgrade cannot silently skip it.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const root = path.dirname(require.resolve('@litertjs/core/package.json'));
const file = path.join(root, 'dist', 'index.js');
const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const STOCK = `  {
    dtype: "uint8",
    typedArrayConstructor: Uint8Array,
    elementType: ElementType.UINT8
  }
]);`;
const PATCHED = `  {
    dtype: "uint8",
    typedArrayConstructor: Uint8Array,
    elementType: ElementType.UINT8
  },
  {
    dtype: "int8",
    typedArrayConstructor: Int8Array,
    elementType: ElementType.INT8
  },
  {
    dtype: "int16",
    typedArrayConstructor: Int16Array,
    elementType: ElementType.INT16
  }
]);`;

const source = readFileSync(file, 'utf8');
if (source.includes(PATCHED)) {
  console.log(`@litertjs/core ${version}: int8/int16 dtypes already present`);
} else if (version === '2.5.3' && source.includes(STOCK)) {
  writeFileSync(file, source.replace(STOCK, PATCHED));
  console.log(`@litertjs/core ${version}: added the int8 and int16 dtypes (tools/patch-litertjs.mjs)`);
} else {
  console.error(`error: @litertjs/core ${version} is not the 2.5.3 this patch was written for; ` +
    'check whether it supports int8 tensors now and update web_demo/tools/patch-litertjs.mjs');
  process.exit(1);
}
