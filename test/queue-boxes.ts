// The pieces of a several-box setup for tests, each a real process: Debian's redis-server on a
// free port with its own folder (append-only file on, as README asks of the user's Redis), and
// worker boxes as `server/worker-box.ts` processes with their own folders.
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { FIXTURE_MODEL, tempDir } from './helpers.js';

const ROOT = join(import.meta.dirname, '..');

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as { port: number };
  await new Promise((ok) => server.close(ok));
  return port;
}

/** A process whose output is kept, and which can be waited for a line. */
class Proc {
  out = '';
  private readonly exited: Promise<void>;
  ended = false;

  constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (d: Buffer) => (this.out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.out += d.toString()));
    this.exited = new Promise((ok) =>
      child.once('exit', () => {
        this.ended = true;
        ok();
      }),
    );
  }

  async waitFor(pattern: RegExp, ms = 90_000): Promise<void> {
    const end = Date.now() + ms;
    while (!pattern.test(this.out)) {
      if (this.ended) throw new Error(`the process ended before printing ${pattern}:\n${this.out}`);
      if (Date.now() > end) throw new Error(`timed out waiting for ${pattern}:\n${this.out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.ended) this.child.kill(signal);
    await this.exited;
  }
}

export interface TestRedis {
  url: string;
  /** Stops it as a service manager would (SIGTERM: the append-only file is flushed) and starts it again on the same folder and port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<TestRedis> {
  const dir = tempDir('svd-redis-');
  const port = await freePort();
  const start = async () => {
    const p = new Proc(
      spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--maxmemory-policy', 'noeviction'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    await p.waitFor(/Ready to accept connections/, 30_000);
    return p;
  };
  let proc = await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    async restart() {
      await proc.stop('SIGTERM');
      proc = await start();
    },
    stop: () => proc.stop('SIGTERM'),
  };
}

export interface TestBox {
  name: string;
  proc: Proc;
  /** The worker box process itself (kill -9 it to lose the box mid-job). */
  pid: number;
}

/** A worker box with one CPU worker and the demo model, in its own folder; resolves once it takes jobs. */
export async function startBox(o: { name: string; redis: string; server: string; token: string; workDir?: string; lockSeconds?: number }): Promise<TestBox> {
  const args = ['--import', 'tsx', 'server/worker-box.ts', '--queue', o.redis, '--server', o.server, '--token', o.token, '--name', o.name];
  args.push('--workers', '1', '--provider', 'cpu', '--model', FIXTURE_MODEL, '--work-dir', o.workDir ?? tempDir(`svd-box-${o.name}-`), '--lock-seconds', String(o.lockSeconds ?? 3));
  const proc = new Proc(spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
  await proc.waitFor(/taking jobs from/);
  await proc.waitFor(/model \S+ ready/);
  return { name: o.name, proc, pid: proc.child.pid! };
}

/** Starts a box process that is expected to stop at start; resolves with what it printed. */
export async function failedBox(args: string[]): Promise<{ code: number | null; out: string }> {
  const proc = new Proc(spawn(process.execPath, ['--import', 'tsx', 'server/worker-box.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
  const code = await new Promise<number | null>((ok) => proc.child.once('exit', (c) => ok(c)));
  return { code, out: proc.out };
}
