#!/usr/bin/env node
// ONNX Runtime (CPU execution provider) side of scripts/bench_engine.sh.
//
// usage: node scripts/bench/ort_bench.js MODEL.onnx [--batch 1,16] [--threads N]
//            [--repeats R] [--warmup W] [--shape 3,256] [--data X.bin] [--ort-dir DIR]
//
// Prints one JSON object in the schema of `edgeinfer bench --json`:
//   {"model", "threads", "results":[{"batch", "latency_ms":{"p50","p90","p99"},
//    "throughput_per_s"}], "peak_rss_bytes"}
// plus a few ORT-only fields (runtime, ort_version, node_rss_bytes_before_load,
// private_bytes, private_bytes_after_load, file_bytes, call_overhead_p50_ms).
//
// The measurement mirrors inference/tool/cmd_bench.cc on purpose, so that the two sides are
// comparable: same warm-up and repeat counts, one input tensor built once per batch size and
// reused, wall time of each run alone, the same percentile rule, and
// throughput = batch * repeats / total timed seconds.
//
// onnxruntime-node is found in --ort-dir, else $EDGEINFER_ORT_DIR, else
// ${EDGEINFER_CACHE:-$HOME/.cache/edgeinfer}/ort (where bench_engine.sh installs it), else on
// Node's usual module path.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

const HELP = `usage: ort_bench.js MODEL.onnx [--batch 1,16] [--threads N] [--repeats R] [--warmup W]
                   [--shape D1,D2,...] [--data X.bin] [--ort-dir DIR]
  --batch    batch sizes, comma-separated (default 1,16)
  --threads  ORT intra-op threads (default 1); inter-op threads are always 1
  --repeats  timed runs per batch size (default 200)
  --warmup   untimed runs first (default 20)
  --shape    one sample's shape without the batch dim, when the model's input shape has
             other symbolic dims (or the ORT build cannot report input shapes)
  --data     inputs from this file (raw float32 samples, as \`edgeinfer run\` reads them), in
             turn, as \`edgeinfer bench --data\` does; default: standard normal values
  --ort-dir  folder holding node_modules/onnxruntime-node
`;

function die(msg, code = 1) {
  process.stderr.write(`ort_bench: ${msg}\n`);
  process.exit(code);
}

function parseArgs(argv) {
  const a = { batch: [1, 16], threads: 1, repeats: 200, warmup: 20, shape: null, ortDir: null,
              data: null };
  const positionals = [];
  const intList = (s, flag) => {
    const v = s.split(',').map((x) => Number(x));
    if (!v.length || v.some((x) => !Number.isInteger(x) || x < 1)) die(`bad ${flag}: '${s}'`, 2);
    return v;
  };
  const int = (s, flag, min) => {
    const v = Number(s);
    if (!Number.isInteger(v) || v < min) die(`bad ${flag}: '${s}'`, 2);
    return v;
  };
  for (let i = 0; i < argv.length; ++i) {
    const f = argv[i];
    if (f === '--help' || f === '-h') { process.stdout.write(HELP); process.exit(0); }
    if (!f.startsWith('--')) { positionals.push(f); continue; }
    const v = argv[++i];
    if (v === undefined) die(`${f} needs a value`, 2);
    switch (f) {
      case '--batch': a.batch = intList(v, f); break;
      case '--threads': a.threads = int(v, f, 1); break;
      case '--repeats': a.repeats = int(v, f, 1); break;
      case '--warmup': a.warmup = int(v, f, 0); break;
      case '--shape': a.shape = intList(v, f); break;
      case '--ort-dir': a.ortDir = v; break;
      case '--data': a.data = v; break;
      default: die(`unknown flag ${f}\n${HELP}`, 2);
    }
  }
  if (positionals.length !== 1) die(`takes one .onnx file\n${HELP}`, 2);
  a.model = positionals[0];
  return a;
}

function loadOrt(ortDir) {
  const cache = process.env.EDGEINFER_CACHE || path.join(os.homedir(), '.cache', 'edgeinfer');
  const dirs = [ortDir, process.env.EDGEINFER_ORT_DIR, path.join(cache, 'ort')].filter(Boolean);
  for (const d of dirs) {
    const p = path.join(d, 'node_modules', 'onnxruntime-node');
    if (fs.existsSync(p)) return require(p);
  }
  try {
    return require('onnxruntime-node');
  } catch (e) {
    die(`onnxruntime-node not found (looked in ${dirs.join(', ')}): ${e.message}`);
  }
}

// "Anonymous:" of /proc/self/smaps_rollup, the figure edgeinfer reports as private_bytes: memory
// that is not backed by a file (heap, arenas, and for ORT the weights it copies out of the file).
function anonymousBytes() {
  try {
    const m = /^Anonymous:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/smaps_rollup', 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

// Same rule as cmd_bench.cc: sort, index round(p/100 * (n-1)).
function percentile(sorted, p) {
  const i = Math.floor((p / 100) * (sorted.length - 1) + 0.5);
  return sorted[Math.min(i, sorted.length - 1)];
}

// Deterministic N(0,1) input (mulberry32 + Box-Muller): the values differ from edgeinfer's
// std::mt19937 stream, but neither model's cost depends on the values.
function randomNormal(n, seed = 1) {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 1) / 4294967297;  // in (0, 1)
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const th = 2 * Math.PI * uniform();
    out[i] = r * Math.cos(th);
    if (i + 1 < n) out[i + 1] = r * Math.sin(th);
  }
  return out;
}

// --- binding overhead --------------------------------------------------------------------
// A one-node ONNX model, Identity of a float tensor [batch, ...dims], written as raw protobuf
// (the ONNX format is a protobuf ModelProto; no ONNX library is needed for four messages).
// Timing session.run on it gives what every run pays outside the model itself: the Node
// binding's setImmediate hop, wrapping inputs and outputs in ort.Tensor, and ORT's own per-run
// bookkeeping. Reported beside the figures so that a reader can judge batch-1 latency fairly.
function identityModel(dims) {
  const varint = (n) => { const b = []; do { let x = n & 0x7f; n >>>= 7; if (n) x |= 0x80; b.push(x); } while (n); return b; };
  const key = (field, wire) => varint((field << 3) | wire);
  const num = (field, n) => [...key(field, 0), ...varint(n)];
  const msg = (field, bytes) => [...key(field, 2), ...varint(bytes.length), ...bytes];
  const str = (field, s) => msg(field, [...Buffer.from(s, 'utf8')]);
  const dim = (d) => msg(1, typeof d === 'number' ? num(1, d) : str(2, d));  // Dimension
  const tensorType = msg(1, [...num(1, 1 /* FLOAT */), ...msg(2, ['batch', ...dims].flatMap(dim))]);
  const valueInfo = (field, name) => msg(field, [...str(1, name), ...msg(2, tensorType)]);
  const node = msg(1, [...str(1, 'x'), ...str(2, 'y'), ...str(4, 'Identity')]);
  const graph = [...node, ...str(2, 'identity'), ...valueInfo(11, 'x'), ...valueInfo(12, 'y')];
  const opset = [...str(1, ''), ...num(2, 13)];
  return Uint8Array.from([...num(1, 8 /* ir_version */), ...msg(7, graph), ...msg(8, opset)]);
}

async function callOverheadMs(ort, options, dims, batch, warmup, repeats) {
  const s = await ort.InferenceSession.create(identityModel(dims), options);
  const perSample = dims.reduce((x, y) => x * y, 1);
  const feeds = { x: new ort.Tensor('float32', randomNormal(perSample * batch), [batch, ...dims]) };
  for (let i = 0; i < warmup; ++i) await s.run(feeds);
  const ms = [];
  for (let i = 0; i < repeats; ++i) {
    const t0 = process.hrtime.bigint();
    await s.run(feeds);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  await s.release();
  return percentile(ms.sort((x, y) => x - y), 50);
}

// One sample's dims (batch dim dropped) from the session's input metadata, or --shape.
function sampleShape(session, name, override) {
  if (override) return override;
  const meta = (session.inputMetadata || []).find((m) => m.name === name);
  if (!meta || !Array.isArray(meta.shape))
    die(`this onnxruntime-node cannot report the shape of input '${name}': pass --shape`);
  if (meta.type && meta.type !== 'float32') die(`input '${name}' is ${meta.type}, not float32`);
  const dims = meta.shape.slice(1);
  if (dims.some((d) => typeof d !== 'number' || d < 1))
    die(`input '${name}' has shape [${meta.shape}] with symbolic dims beyond the batch: pass --shape`);
  return dims;
}

// `n` floats: the samples of --data in turn (the same inputs `edgeinfer bench --data` times).
function benchInput(n, dataPath) {
  if (!dataPath) return randomNormal(n);
  const buf = fs.readFileSync(dataPath);
  if (buf.length < 4 || buf.length % 4) die(`${dataPath}: not raw float32 samples`);
  const data = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
  const out = new Float32Array(n);
  for (let i = 0; i < n; ++i) out[i] = data[i % data.length];
  return out;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  // Node's own footprint before ORT is loaded, so a reader can tell the runtime's share of
  // ORT's peak RSS from the JavaScript engine's.
  const nodeRssBeforeLoad = process.memoryUsage().rss;
  const ort = loadOrt(args.ortDir);

  const options = {
    executionProviders: ['cpu'],
    intraOpNumThreads: args.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  };
  const session = await ort.InferenceSession.create(args.model, options);
  const privateAfterLoad = anonymousBytes();
  if (session.inputNames.length !== 1)
    die(`feeds models with one input; '${args.model}' has ${session.inputNames.length}`);
  const inputName = session.inputNames[0];
  const dims = sampleShape(session, inputName, args.shape);
  const perSample = dims.reduce((x, y) => x * y, 1);

  const results = [];
  for (const batch of args.batch) {
    const tensor = new ort.Tensor('float32', benchInput(perSample * batch, args.data),
                                  [batch, ...dims]);
    const feeds = { [inputName]: tensor };
    for (let i = 0; i < args.warmup; ++i) await session.run(feeds);
    const ms = new Array(args.repeats);
    let total = 0;
    for (let i = 0; i < args.repeats; ++i) {
      const t0 = process.hrtime.bigint();
      await session.run(feeds);
      ms[i] = Number(process.hrtime.bigint() - t0) / 1e6;
      total += ms[i];
    }
    ms.sort((x, y) => x - y);
    results.push({
      batch,
      latency_ms: { p50: percentile(ms, 50), p90: percentile(ms, 90), p99: percentile(ms, 99) },
      throughput_per_s: (batch * args.repeats) / (total / 1000),
    });
  }

  const peakRss = process.resourceUsage().maxRSS * 1024;  // maxRSS is in KiB
  const privateBytes = anonymousBytes();
  // After the timed runs and the memory readings, so that its session can disturb neither.
  const overhead = await callOverheadMs(ort, options, dims, 1, args.warmup, args.repeats);

  const out = {
    model: path.basename(args.model).replace(/\.onnx$/, ''),
    threads: args.threads,
    runtime: 'onnxruntime-node',
    ort_version: (ort.env && ort.env.versions && ort.env.versions.node) || 'unknown',
    results,
    peak_rss_bytes: peakRss,
    node_rss_bytes_before_load: nodeRssBeforeLoad,
    private_bytes: privateBytes,
    private_bytes_after_load: privateAfterLoad,
    file_bytes: fs.statSync(args.model).size,
    // p50 of session.run on an Identity model of the same input at batch 1 (see identityModel).
    call_overhead_p50_ms: overhead,
  };
  process.stdout.write(JSON.stringify(out) + '\n');
  await session.release();
}

main().catch((e) => die(e && e.stack ? e.stack : String(e)));
