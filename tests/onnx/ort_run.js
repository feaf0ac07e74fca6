// Runs an ONNX model in onnxruntime (npm onnxruntime-node) on the first N
// images of an MNIST IDX file and writes the outputs as float32 (N, K),
// little-endian, for compare.js.
//   node ort_run.js MODEL.onnx IMAGES N SHAPE OUT [--norm MEAN,STD] [--exp]
// SHAPE: a sample's dims as the model takes them, e.g. 28,28,1 or 784 or
// 1,28,28. Values are pixel/255, then (x - MEAN) / STD with --norm; --exp
// turns log-probabilities into probabilities.
// Needs NODE_PATH (or a node_modules above) with onnxruntime-node:
// scripts/install-onnxruntime.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
    const a = process.argv.slice(2);
    if (a.length < 5)
        throw new Error('usage: ort_run.js MODEL IMAGES N SHAPE OUT [--norm M,S] [--exp]');
    const [model, images, nStr, shapeStr, out] = a;
    let mean = 0, std = 1, exp = false;
    for (let i = 5; i < a.length; i++) {
        if (a[i] === '--norm') [mean, std] = a[++i].split(',').map(Number);
        else if (a[i] === '--exp') exp = true;
        else throw new Error('unknown option ' + a[i]);
    }
    const buf = fs.readFileSync(images);
    if (buf.readUInt32BE(0) !== 0x803) throw new Error(images + ': not an IDX images file');
    const count = buf.readUInt32BE(4), side = buf.readUInt32BE(8) * buf.readUInt32BE(12);
    const N = Math.min(Number(nStr), count);
    const shape = shapeStr.split(',').map(Number);
    const x = new Float32Array(N * side);
    for (let i = 0; i < N * side; i++) {
        const v = Math.fround(buf[16 + i] * Math.fround(1 / 255));
        x[i] = mean === 0 && std === 1 ? v : Math.fround(Math.fround(v - mean) / std);
    }
    const s = await ort.InferenceSession.create(model, {
        intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'disabled',
    });
    const feeds = {};
    feeds[s.inputNames[0]] = new ort.Tensor('float32', x, [N, ...shape]);
    const r = await s.run(feeds);
    const y = r[s.outputNames[0]].data;
    if (exp) for (let i = 0; i < y.length; i++) y[i] = Math.exp(y[i]);
    fs.writeFileSync(out, Buffer.from(y.buffer, y.byteOffset, y.byteLength));
    console.log(`ort_run: ${model}: ${N} images, ${y.length / N} outputs`);
}
main().catch(e => { console.error('ort_run: ' + e.message); process.exit(1); });
