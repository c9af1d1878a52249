#!/usr/bin/env node
// Top-1 accuracy of an ONNX model under ONNX Runtime (CPU), for scripts/bench_quant.sh: the ORT
// counterpart of `edgeinfer eval`.
//
// usage: node scripts/bench/ort_eval.js MODEL.onnx --data X.bin --labels L.bin [--batch N]
//            [--threads N] [--ort-dir DIR]
//
// X.bin holds raw little-endian float32 samples (as `edgeinfer run` reads them), L.bin one uint8
// class label per sample. The sample size comes from the model's input shape. Prints
// {"accuracy", "correct", "samples"}. onnxruntime-node is found as ort_bench.js finds it.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

function die(msg, code = 1) {
  process.stderr.write(`ort_eval: ${msg}\n`);
  process.exit(code);
}

function parseArgs(argv) {
  const a = { batch: 256, threads: 1, data: null, labels: null, ortDir: null, model: null };
  for (let i = 0; i < argv.length; ++i) {
    const f = argv[i];
    if (f === '--help' || f === '-h') {
      process.stdout.write('usage: ort_eval.js MODEL.onnx --data X.bin --labels L.bin [--batch N] [--threads N] [--ort-dir DIR]\n');
      process.exit(0);
    }
    if (!f.startsWith('--')) { if (a.model) die('takes one .onnx file', 2); a.model = f; continue; }
    const v = argv[++i];
    if (v === undefined) die(`${f} needs a value`, 2);
    if (f === '--data') a.data = v;
    else if (f === '--labels') a.labels = v;
    else if (f === '--ort-dir') a.ortDir = v;
    else if (f === '--batch' || f === '--threads') {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) die(`bad ${f}: '${v}'`, 2);
      a[f.slice(2)] = n;
    } else die(`unknown flag ${f}`, 2);
  }
  if (!a.model || !a.data || !a.labels) die('needs MODEL.onnx, --data and --labels', 2);
  return a;
}

function loadOrt(ortDir) {
  const cache = process.env.EDGEINFER_CACHE || path.join(os.homedir(), '.cache', 'edgeinfer');
  const dirs = [ortDir, process.env.EDGEINFER_ORT_DIR, path.join(cache, 'ort')].filter(Boolean);
  for (const d of dirs) {
    const p = path.join(d, 'node_modules', 'onnxruntime-node');
    if (fs.existsSync(p)) return require(p);
  }
  return require('onnxruntime-node');
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const ort = loadOrt(a.ortDir);
  const session = await ort.InferenceSession.create(a.model, {
    executionProviders: ['cpu'], intraOpNumThreads: a.threads, interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  const name = session.inputNames[0];
  const meta = (session.inputMetadata || []).find((m) => m.name === name);
  if (!meta || !Array.isArray(meta.shape)) die(`cannot read the shape of input '${name}'`);
  const dims = meta.shape.slice(1);
  const per = dims.reduce((x, y) => x * y, 1);
  const raw = fs.readFileSync(a.data);
  const labels = fs.readFileSync(a.labels);
  const x = new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4);
  if (x.length % per !== 0) die(`${a.data}: ${x.length} floats is not a multiple of ${per}`);
  const n = x.length / per;
  if (labels.length !== n) die(`${a.labels}: ${labels.length} labels for ${n} samples`);
  let correct = 0;
  for (let s = 0; s < n; s += a.batch) {
    const b = Math.min(a.batch, n - s);
    const t = new ort.Tensor('float32', x.slice(s * per, (s + b) * per), [b, ...dims]);
    const out = (await session.run({ [name]: t }))[session.outputNames[0]];
    const classes = out.data.length / b;
    for (let i = 0; i < b; ++i) {
      let best = 0;
      for (let c = 1; c < classes; ++c) if (out.data[i * classes + c] > out.data[i * classes + best]) best = c;
      if (best === labels[s + i]) ++correct;
    }
  }
  process.stdout.write(JSON.stringify({ accuracy: correct / n, correct, samples: n }) + '\n');
  await session.release();
}

main().catch((e) => die(e && e.stack ? e.stack : String(e)));
