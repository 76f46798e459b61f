// tests/onnx_check.js: runs an ONNX model in onnxruntime (npm onnxruntime-node) for the C tests.
// usage: node tests/onnx_check.js MODEL.onnx INPUT.bin OUTPUT.bin N,H,W,C
// INPUT.bin holds the float32 (little-endian) input "input" of the given shape; the first
// output is written to OUTPUT.bin as float32. onnxruntime-node is found through NODE_PATH
// (the C test points it at $NAS_ORT_DIR, default /opt/nas-ort/node_modules).
'use strict';
const fs = require('fs');

async function main() {
  const [model, inPath, outPath, shapeArg] = process.argv.slice(2);
  if (!model || !inPath || !outPath || !shapeArg) {
    console.error('usage: node onnx_check.js MODEL.onnx INPUT.bin OUTPUT.bin N,H,W,C');
    process.exit(2);
  }
  const ort = require('onnxruntime-node');
  const shape = shapeArg.split(',').map(Number);
  const raw = fs.readFileSync(inPath);
  const x = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
  const want = shape.reduce((a, b) => a * b, 1);
  if (x.length !== want) throw new Error(`${inPath}: ${x.length} floats, the shape needs ${want}`);
  const sess = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'disabled' });
  const res = await sess.run({ [sess.inputNames[0]]: new ort.Tensor('float32', x, shape) });
  const y = res[sess.outputNames[0]];
  fs.writeFileSync(outPath, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
  console.log(`onnx_check: ${model}: output ${sess.outputNames[0]} [${y.dims.join(',')}]`);
}

main().catch((err) => {
  console.error(`onnx_check: ${err.message || err}`);
  process.exit(1);
});
