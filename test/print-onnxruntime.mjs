// Run by test/gpu-setup.test.ts through the launcher: which onnxruntime-node build this process
// and a Node process it starts load when they import `onnxruntime-node`.
import { execFileSync } from 'node:child_process';

const ort = await import('onnxruntime-node');
const child = execFileSync(process.execPath, ['--input-type=module', '-e', "const o = await import('onnxruntime-node'); process.stdout.write(o.env.versions.node)"], {
  cwd: import.meta.dirname,
  encoding: 'utf8',
});
console.log(JSON.stringify({ self: ort.env.versions.node, child }));
