// The real server as users start it (cli/start.ts, npm start's entry, in its own process, with the
// last resort installed), for tests that must tell whether the process itself survived; plus a plain
// node:http client that can send any bytes, any headers, and from any loopback address.
import { spawn, type ChildProcess } from 'node:child_process';
import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { FIXTURE_MODEL } from './helpers.js';

const ROOT = join(import.meta.dirname, '..');

export interface CliServer {
  url: string;
  proc: ChildProcess;
  /** Everything the process printed so far (stdout and stderr). */
  output(): string;
  alive(): boolean;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export async function startCliServer(args: string[], opts: { token?: string; readyMs?: number } = {}): Promise<CliServer> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'cli/start.ts', '--model', FIXTURE_MODEL, '--port', '0', '--provider', 'cpu', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let exited = false;
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<void>((ok) =>
    proc.once('exit', () => {
      exited = true;
      ok();
    }),
  );
  const server: CliServer = {
    url: '',
    proc,
    output: () => out,
    alive: () => !exited && proc.exitCode === null,
    async stop(signal = 'SIGTERM') {
      if (!exited) proc.kill(signal);
      await exit;
    },
  };
  const end = Date.now() + (opts.readyMs ?? 90_000);
  try {
    for (;;) {
      if (exited) throw new Error(`the server exited:\n${out}`);
      if (Date.now() > end) throw new Error(`the server did not get ready:\n${out}`);
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) {
        server.url = m[1]!;
        const h = await send(server.url, 'GET', 'api/health', { headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {} }).catch(() => undefined);
        if (h?.status === 200 && (JSON.parse(h.text) as { status: string }).status === 'ready') return server;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await server.stop('SIGKILL');
    throw err;
  }
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** One HTTP request with exactly these headers and body; `from` picks the loopback source address. */
export function send(base: string, method: string, path: string, opts: { headers?: OutgoingHttpHeaders; body?: string | Uint8Array; from?: string; timeoutMs?: number } = {}): Promise<Reply> {
  const url = new URL(base);
  return new Promise((ok, fail) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, method, path: `/${path}`, headers: opts.headers, localAddress: opts.from, agent: false, timeout: opts.timeoutMs ?? 20_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => ok({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(chunks).toString() }));
        res.on('error', fail);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} /${path} timed out`)));
    req.on('error', fail);
    req.end(opts.body);
  });
}

/** A multipart/form-data body by hand, so tests can cut it, repeat fields or break it. */
export function multipart(parts: { name: string; filename?: string; data: string | Uint8Array }[], boundary = 'hostile-boundary-1234'): { body: Buffer; contentType: string } {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}\r\n${p.filename !== undefined ? 'Content-Type: application/octet-stream\r\n' : ''}\r\n`,
      ),
    );
    chunks.push(Buffer.from(p.data));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}
