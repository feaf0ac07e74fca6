// Compares two float32 (N, K) output files (ort_run.js, onnx_probs):
// every row's argmax must agree and every value within TOL.
//   node compare.js A.f32 B.f32 K TOL [LABEL]
// Prints "compare LABEL: N rows, max |diff| D, classes differ C"; exit 1 if
// a class differs or D > TOL.
'use strict';
const fs = require('fs');
const [fa, fb, kStr, tolStr, label = ''] = process.argv.slice(2);
const read = f => { const b = fs.readFileSync(f); return new Float32Array(b.buffer, b.byteOffset, b.length / 4); };
const a = read(fa), b = read(fb), K = Number(kStr), tol = Number(tolStr);
if (a.length !== b.length || a.length % K || !a.length) {
    console.error(`compare ${label}: sizes differ (${a.length} vs ${b.length} values)`);
    process.exit(1);
}
const argmax = (v, r) => { let m = 0; for (let k = 1; k < K; k++) if (v[r * K + k] > v[r * K + m]) m = k; return m; };
let maxd = 0, cls = 0;
for (let r = 0; r < a.length / K; r++) {
    if (argmax(a, r) !== argmax(b, r)) cls++;
    for (let k = 0; k < K; k++) maxd = Math.max(maxd, Math.abs(a[r * K + k] - b[r * K + k]));
}
console.log(`compare ${label}: ${a.length / K} rows, max |diff| ${maxd.toExponential(2)}, classes differ ${cls}`);
process.exit(cls || !(maxd <= tol) ? 1 : 0);
