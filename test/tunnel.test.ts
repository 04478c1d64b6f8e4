// The public link against a local server speaking localtunnel's protocol: the link and the
// password are printed, the tunnel server drops every connection and a new link is printed,
// and the svd-studio server stays up throughout.
import { createServer as createHttp, type Server } from 'node:http';
import { createServer as createTcp, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { startServer } from '../server/main.js';
import { FIXTURE_MODEL, tempDir } from './helpers.js';

/** A minimal localtunnel server: /?new hands out tunnels; /t/<id>/... is forwarded through them. */
function fakeTunnelServer() {
  const pool: Socket[] = [];
  let n = 0;
  let tcpPort = 0;
  let httpPort = 0;
  const tcp = createTcp((s) => {
    pool.push(s);
    s.on('close', () => pool.splice(pool.indexOf(s), 1));
    s.on('error', () => {});
  });
  const http: Server = createHttp((req, res) => {
    const url = new URL(req.url!, 'http://x');
    if (url.pathname === '/' && url.searchParams.has('new')) {
      n++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: `t${n}`, url: `http://127.0.0.1:${httpPort}/t/t${n}`, port: tcpPort, max_conn_count: 2 }));
      return;
    }
    if (url.pathname === '/mytunnelpassword') return void res.end('203.0.113.7');
    const m = /^\/t\/(t\d+)(\/.*)$/.exec(url.pathname);
    const tunnelSocket = pool.find((s) => !s.destroyed && !(s as Socket & { busy?: boolean }).busy);
    if (!m || m[1] !== `t${n}` || !tunnelSocket) return void res.writeHead(502).end('no tunnel');
    (tunnelSocket as Socket & { busy?: boolean }).busy = true;
    const chunks: Buffer[] = [];
    tunnelSocket.on('data', (d) => chunks.push(d));
    tunnelSocket.on('close', () => {
      res.socket!.end(Buffer.concat(chunks));
    });
    tunnelSocket.write(`GET ${m[2]}${url.search} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  });
  return {
    async listen() {
      await new Promise<void>((ok) => tcp.listen(0, '127.0.0.1', () => ok()));
      await new Promise<void>((ok) => http.listen(0, '127.0.0.1', () => ok()));
      tcpPort = (tcp.address() as { port: number }).port;
      httpPort = (http.address() as { port: number }).port;
      return `http://127.0.0.1:${httpPort}`;
    },
    dropAll() {
      for (const s of [...pool]) s.destroy();
    },
    close() {
      this.dropAll();
      tcp.close();
      http.close();
    },
    get tunnelsIssued() {
      return n;
    },
  };
}

describe('public link (localtunnel protocol)', () => {
  const fake = fakeTunnelServer();
  afterAll(() => fake.close());

  it('prints link, password and token; survives the tunnel server dropping it; stays up', async () => {
    const host = await fake.listen();
    const lines: string[] = [];
    const server = await startServer(
      { model: FIXTURE_MODEL, port: 0, outputDir: tempDir('svd-tunnel-'), provider: 'cpu', share: 'localtunnel', tunnelHost: host, tunnelPasswordUrl: `${host}/mytunnelpassword` },
      (l) => lines.push(l),
    );
    try {
      const link = (i: number) => lines.filter((l) => l.startsWith('public link:'))[i];
      await expect.poll(() => link(0), { timeout: 20_000 }).toBeDefined();
      expect(link(0)).toBe(`public link: ${host}/t/t1/?token=${server.token}`);
      expect(lines).toContain('tunnel password: 203.0.113.7');
      expect(lines).toContain(`access token: ${server.token}`);
      // Through the link, the API answers (and asks for the token).
      const through = await fetch(`${host}/t/t1/api/health`);
      expect(through.status).toBe(401);

      fake.dropAll();
      await expect.poll(() => link(1), { timeout: 20_000 }).toBeDefined();
      expect(link(1)).toBe(`public link: ${host}/t/t2/?token=${server.token}`);
      expect(lines.some((l) => l.startsWith('public link lost'))).toBe(true);
      const health = await fetch(`${server.url}api/health`, { headers: { authorization: `Bearer ${server.token}` } });
      expect(health.status).toBe(200);
      const viaNew = await fetch(`${host}/t/t2/api/health?token=${server.token}`);
      expect(viaNew.status).toBe(200);
    } finally {
      await server.close();
    }
  });
});
