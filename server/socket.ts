// socket.io: live progress by room. The handshake passes the same gate as the HTTP API (token,
// origin, host), each socket joins its owner's room, `watch` answers only for jobs the client may
// see, and `history` events go only to the clients that may see the job.
import type { Server as HttpServer } from 'node:http';
import { Server as IoServer, type Socket } from 'socket.io';
import { z } from 'zod';
import type { ClientToServerEvents, ServerToClientEvents } from '../common/socket-events.js';
import { checkAccess, lookupToken, requestClient, type Gate } from './auth.js';
import { clientIdOf, hostRefusal, mayAccess, originRefusal, ownerOf, viaHttps, type AccessOptions } from './http/access.js';
import { JOB_ID, type JobRecord } from './jobs/job.js';
import type { JobService } from './jobs/job-service.js';
import { snapshot } from './jobs/snapshot.js';

export type JobIo = IoServer<ClientToServerEvents, ServerToClientEvents>;

const jobIdArg = z.string().regex(JOB_ID);
const ownerRoom = (owner: string | undefined) => `owner:${owner ?? '-'}`;

export function attachSocket(server: HttpServer, service: JobService, gate: Gate, access: AccessOptions): JobIo {
  const io: JobIo = new IoServer(server, {
    connectionStateRecovery: { maxDisconnectionDuration: 2 * 60_000, skipMiddlewares: false },
    maxHttpBufferSize: 1e6,
    // Before any session exists: a page of another origin (or a rebinding host name) gets no socket.
    allowRequest: (req, done) => {
      const refusal = hostRefusal(req.headers, access.allowedHosts) ?? originRefusal(req.headers, access.trust);
      done(refusal ?? null, !refusal);
    },
  });
  io.use((socket, next) => {
    const h = socket.handshake;
    const auth = z.looseObject({ token: z.unknown() }).safeParse(h.auth);
    const https = viaHttps(h.headers, h.secure, access.trust);
    const clientId = clientIdOf(h.headers, https);
    socket.data.owner = ownerOf(clientId);
    const lookup = lookupToken({ handshake: auth.success ? auth.data.token : undefined, cookie: h.headers.cookie });
    const refused = checkAccess(gate, lookup, requestClient({ socket: { remoteAddress: h.address }, headers: h.headers }, gate.trust), clientId);
    if (!refused) return next();
    next(new Error(refused.status === 401 && !lookup.tokens.length ? 'access token required: pass it as auth.token' : refused.error));
  });
  io.on('connection', (socket) => {
    const owner = socket.data.owner as string | undefined;
    void socket.join(ownerRoom(owner));
    onEvent(socket, 'watch', jobIdArg, (id, reply) => {
      const job = service.store.get(id);
      if (!job || !mayAccess(job, owner, access)) return reply({ error: 'no such job' });
      void socket.join(`job:${id}`);
      reply({ job: snapshot(service, job) });
      const preview = service.lastPreview(id);
      if (preview) socket.emit('preview', { id, url: preview });
    });
    onEvent(socket, 'unwatch', jobIdArg, (id) => void socket.leave(`job:${id}`));
  });
  // Who hears of a job in the history: everyone for a shared history or a job without an owner.
  const audience = (job: JobRecord) => (access.sharedHistory || job.owner === undefined ? io : io.to(ownerRoom(job.owner)));
  // The history hears of a job when what it shows changes (status, save), not at every step:
  // watchers of the job get those in its room.
  const shown = new Map<string, string>();
  service.on('update', (job) => {
    const snap = snapshot(service, job);
    io.to(`job:${job.id}`).emit('job', snap);
    const state = `${job.status} ${job.saved?.status ?? ''}`;
    if (shown.get(job.id) === state) return;
    shown.set(job.id, state);
    audience(job).emit('history', { id: job.id, status: job.status, job: snap });
  });
  service.on('removed', (job) => {
    shown.delete(job.id);
    io.in(`job:${job.id}`).socketsLeave(`job:${job.id}`);
    audience(job).emit('history', { id: job.id, removed: true });
  });
  service.on('preview', (id, url) => io.to(`job:${id}`).emit('preview', { id, url }));
  return io;
}

/**
 * A socket.io event whose one argument is parsed by `schema`; the reply goes to the client's
 * acknowledgement when it sent one. Bad arguments get an error reply, never a thrown error.
 */
function onEvent<S extends z.ZodType>(socket: Socket, name: string, schema: S, handler: (arg: z.output<S>, reply: (r: unknown) => void) => void) {
  socket.on(name, (...args: unknown[]) => {
    const last = args.at(-1);
    const ack = typeof last === 'function' ? (last as (r: unknown) => void) : undefined;
    if (ack) args.pop();
    const reply = (r: unknown) => void ack?.(r);
    const parsed = schema.safeParse(args[0]);
    if (!parsed.success || args.length !== 1) return reply({ error: `"${name}" takes one job id (16 lower-case letters and digits)` });
    handler(parsed.data, reply);
  });
}
