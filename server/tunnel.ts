// Public links for a server on a rented GPU. localtunnel's protocol (ask the tunnel server for a
// new tunnel, keep a few TCP connections open to it, and pipe each visitor's connection to the
// local port), written out so that the tunnel can be tested and can never crash the server:
// when the tunnel closes or errors it asks for a new one with backoff and reports the new link.
// `cloudflared` is used instead where asked and on the PATH.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { z } from 'zod';
import { formatError } from '../common/messages.js';

export interface TunnelEvents {
  ready: [{ url: string; password?: string }];
  down: [string];
  log: [string];
}

/** The tunnel server's answer, checked like any outside input before we connect where it says. */
const newTunnelSchema = z.object({
  id: z.string().max(200),
  url: z.url({ protocol: /^https?$/ }),
  port: z.number().int().min(1).max(65535),
  ip: z.union([z.ipv4(), z.ipv6()]).optional(),
  max_conn_count: z.number().int().min(1).optional(),
});

export interface LocalTunnelOptions {
  localPort: number;
  localHost?: string;
  /** The tunnel server (localtunnel.me by default). */
  host?: string;
  /** Where visitors' tunnel password (the public IP) comes from; undefined skips it. */
  passwordUrl?: string;
  /** Path fetched through the link to check it answers before announcing it. */
  checkPath?: string;
  maxBackoffMs?: number;
}

export class LocalTunnel extends EventEmitter<TunnelEvents> {
  private sockets = new Set<Socket>();
  private closed = false;
  private generation = 0;
  private backoff = 1000;
  url: string | undefined;

  constructor(private readonly opts: LocalTunnelOptions) {
    super();
  }

  start(): this {
    void this.open();
    return this;
  }

  close(): void {
    this.closed = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  private async open(): Promise<void> {
    if (this.closed) return;
    const gen = ++this.generation;
    try {
      const host = this.opts.host ?? 'https://localtunnel.me';
      const res = await fetch(`${host}/?new`, { signal: AbortSignal.timeout(15_000) });
      if (!res.ok) throw new Error(`tunnel server answered ${res.status}`);
      const parsed = newTunnelSchema.safeParse(await res.json().catch(() => undefined));
      if (!parsed.success) throw new Error(`the tunnel server's answer is not a new tunnel (${formatError(parsed.error, (k) => k || 'answer')})`);
      const info = parsed.data;
      const remoteHost = info.ip ?? new URL(host).hostname;
      const count = Math.max(1, Math.min(info.max_conn_count ?? 10, 10));
      for (let i = 0; i < count; i++) this.connectOne(gen, remoteHost, info.port);
      await this.checkLink(info.url);
      if (gen !== this.generation || this.closed) return;
      this.url = info.url;
      this.backoff = 1000;
      const password = this.opts.passwordUrl
        ? await fetch(this.opts.passwordUrl, { signal: AbortSignal.timeout(10_000) })
            .then((r) => r.text())
            .catch(() => undefined)
        : undefined;
      // The password is the machine's public address; anything else is not printed.
      this.emit('ready', { url: info.url, password: z.union([z.ipv4(), z.ipv6()]).safeParse(password?.trim()).data });
    } catch (err) {
      this.retry(gen, (err as Error).message);
    }
  }

  private async checkLink(url: string): Promise<void> {
    for (let i = 0; i < 10; i++) {
      try {
        const r = await fetch(`${url.replace(/\/$/, '')}${this.opts.checkPath ?? '/api/health'}`, { headers: { 'bypass-tunnel-reminder': '1' }, signal: AbortSignal.timeout(10_000) });
        if (r.status < 500) return;
      } catch {
        // not yet
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(`the link ${url} does not answer`);
  }

  /** One remote connection; each carries one visitor connection at a time, then is replaced. */
  private connectOne(gen: number, host: string, port: number): void {
    if (this.closed || gen !== this.generation) return;
    const remote = connect({ host, port });
    this.sockets.add(remote);
    remote.setKeepAlive(true);
    let local: Socket | undefined;
    remote.once('data', (first) => {
      local = connect({ host: this.opts.localHost ?? '127.0.0.1', port: this.opts.localPort });
      local.write(first);
      remote.pipe(local).pipe(remote);
      local.on('error', () => remote.destroy());
      local.on('close', () => remote.destroy());
    });
    remote.on('error', () => {});
    remote.on('close', (hadError) => {
      this.sockets.delete(remote);
      local?.destroy();
      if (this.closed || gen !== this.generation) return;
      if (hadError || !local) this.retry(gen, 'the tunnel connection closed');
      else this.connectOne(gen, host, port);
    });
  }

  private retry(gen: number, reason: string): void {
    if (this.closed || gen !== this.generation) return;
    this.generation++; // stale sockets of this tunnel stop reconnecting
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.url = undefined;
    this.emit('down', reason);
    const wait = this.backoff;
    this.backoff = Math.min(this.backoff * 2, this.opts.maxBackoffMs ?? 30_000);
    setTimeout(() => void this.open(), wait);
  }
}

/** cloudflared's quick tunnel: restarts with backoff and reports each new trycloudflare.com link. */
export class CloudflaredTunnel extends EventEmitter<TunnelEvents> {
  private child: ChildProcess | undefined;
  private closed = false;
  private backoff = 1000;

  constructor(
    private readonly localPort: number,
    private readonly binary = 'cloudflared',
  ) {
    super();
  }

  start(): this {
    if (this.closed) return this;
    const child = spawn(this.binary, ['tunnel', '--no-autoupdate', '--url', `http://127.0.0.1:${this.localPort}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const scan = (d: Buffer) => {
      const m = /https:\/\/[a-z0-9-]+\.trycloudflare\.com/.exec(d.toString());
      if (m) {
        this.backoff = 1000;
        this.emit('ready', { url: m[0] });
      }
    };
    child.stdout!.on('data', scan);
    child.stderr!.on('data', scan);
    child.on('error', (err) => this.emit('down', `cloudflared could not start: ${err.message}`));
    child.on('exit', (code) => {
      if (this.closed) return;
      this.emit('down', `cloudflared exited (${code})`);
      setTimeout(() => this.start(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 30_000);
    });
    return this;
  }

  close(): void {
    this.closed = true;
    this.child?.kill();
  }
}
