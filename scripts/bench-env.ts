// One line naming the machine, provider, versions and date, printed by every benchmark.
import { cpus, totalmem } from 'node:os';
import { createRequire } from 'node:module';

export function machineLine(provider: string): string {
  const require = createRequire(import.meta.url);
  const ortVersion = (require('onnxruntime-node/package.json') as { version: string }).version;
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `# ${new Date().toISOString()} | provider ${provider} | onnxruntime-node ${ortVersion} | node ${process.version} | ${cpus().length} × ${cpu} | ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM${process.env.GPU_NAME ? ` | ${process.env.GPU_NAME}` : ''}`;
}
