// How long a job will take, for the whole of it: encoding the input, sampling, decoding and
// writing the videos, and for a queued job the jobs ahead of it. Each stage's time is taken as
// proportional to its work (pixels x frames x steps, ...); the time per unit is learned on this
// machine from finished jobs and kept in the output folder (eta-stats.json), so the next start
// knows it. A machine never seen starts from a rough rate for its class of card (eta-priors.ts).
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import type { JobProgress, JobRecord, JobSettings } from './job.js';
import { writeFileAtomic } from './job-store.js';
import { chainFrameCount } from '../../common/video-chain.js';
import { videoFormats, type VideoFormat } from '../../common/video-formats.js';
import { priorRates, STAGES, type Machine, type Rates, type Stage } from './eta-priors.js';

export { STAGES, type Rates, type Stage };

const rate = z.number().positive();
/** Learned rates: a stage no finished job has had yet (a format never written) is absent. */
const ratesSchema = z.object({ encode: rate, sample: rate, decode: rate, mp4: rate.optional(), webm: rate.optional(), gif: rate.optional() });
const statsSchema = z.object({ version: z.literal(2), machines: z.record(z.string(), z.object({ rates: ratesSchema, jobs: z.number().int().nonnegative() })) });
type Stats = z.infer<typeof statsSchema>;

export const STATS_FILE = 'eta-stats.json';
/** How much a finished job moves the learned rate: recent jobs count most (the machine may be busier now). */
const LEARN = 0.5;

/**
 * The units each stage's time is proportional to (megapixels x frames x steps, ...): the
 * networks' for one segment (a job of several repeats them), the writing's for the whole video.
 */
export function workOf(s: JobSettings, frames: number): Rates {
  const mp = (s.width * s.height) / 1e6;
  const written = chainFrameCount({ ...s, frames }, frames) * s.loops * (s.pingPong ? 2 : 1);
  const write = (f: VideoFormat) => (s.formats.includes(f) ? mp * written : 0);
  return { encode: mp, sample: mp * frames * s.steps, decode: mp * frames, mp4: write('mp4'), webm: write('webm'), gif: write('gif') };
}

/** What the estimator needs to know about the server: the machine a job runs on, and each model's frames. */
export interface EtaContext {
  /** The machine jobs of this model run on (the first worker's, for a job not yet started). */
  machine(model: string | undefined): Machine;
  /** The number of frames a job makes when its settings leave it to the model. */
  frames(model: string | undefined): number;
  /** How many jobs run at once (workers). */
  parallel(): number;
}

/** The clock of one running job: when each stage began, and the estimate last given. */
interface Running {
  key: string;
  rates: Rates;
  work: Rates;
  steps: number;
  encodeAt?: number;
  sampleStart?: number;
  lastStepAt?: number;
  decodeAt?: number;
  /** When each format's encode began, in the order written. */
  writes: { format: VideoFormat; at: number }[];
  /** The segment under way and how many (the extend setting); the stage clocks above are its own. */
  segment: number;
  segments: number;
  /** When the interpolator's first pair was reported done. */
  interpolateAt?: number;
  remaining: { ms: number; at: number };
  /**
   * How much slower than its learned rates this job's networks run (the machine may be busier,
   * or quieter, than when they were learned): measured on the stage under way, applied to the
   * ones to come.
   */
  pace: number;
}

export class EtaEstimator {
  private stats: Stats = { version: 2, machines: {} };
  private readonly running = new Map<string, Running>();

  constructor(
    private readonly dir: string,
    private readonly ctx: EtaContext,
    private readonly now: () => number = () => performance.now(),
  ) {
    const file = join(dir, STATS_FILE);
    if (!existsSync(file)) return;
    try {
      const parsed = statsSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
      if (parsed.success) this.stats = parsed.data;
    } catch {
      // An unreadable file only costs the learned rates: the first jobs teach them again.
    }
  }

  /** The rates a job of this model is expected to run at: learned here, else the card class's. */
  rates(model: string | undefined): { key: string; rates: Rates; learned: boolean } {
    const machine = this.ctx.machine(model);
    const key = `${machine.name} · ${model ?? 'default model'}`;
    const known = this.stats.machines[key];
    return known ? { key, rates: { ...priorRates(machine), ...known.rates }, learned: true } : { key, rates: priorRates(machine), learned: false };
  }

  /** The whole job's time, from the start of its run to its end. */
  total(job: JobRecord): number {
    const work = workOf(job.settings, job.settings.frames ?? this.ctx.frames(job.settings.model));
    const { rates } = this.rates(job.settings.model);
    // The interpolator has no learned rate: its time is not in the estimate until it runs.
    return STAGES.reduce((sum, s) => sum + rates[s] * work[s] * ((videoFormats as readonly string[]).includes(s) ? 1 : job.settings.extend), 0);
  }

  /** A job's run begins (its worker was found). */
  start(job: JobRecord): void {
    const { key, rates } = this.rates(job.settings.model);
    const work = workOf(job.settings, job.settings.frames ?? this.ctx.frames(job.settings.model));
    this.running.set(job.id, { key, rates, work, steps: job.settings.steps, writes: [], segment: 1, segments: job.settings.extend, remaining: { ms: this.total(job), at: this.now() }, pace: 1 });
  }

  /** The progress with the time left for the whole job added; also notes when each stage began. */
  annotate(job: JobRecord, p: JobProgress): JobProgress {
    if (p.stage === 'queued' || p.stage === 'done') return p;
    const r = this.running.get(job.id);
    if (!r) return p;
    const t = this.now();
    // Writing is ffmpeg's, on the CPU: the networks' pace says nothing about it.
    const est = (s: Stage) => r.rates[s] * r.work[s] * ((videoFormats as readonly string[]).includes(s) ? 1 : r.pace);
    const setPace = (observedMs: number, expectedMs: number) => {
      if (expectedMs > 0 && observedMs > 0) r.pace = Math.min(2, Math.max(0.5, observedMs / expectedMs));
    };
    const since = (at: number | undefined) => (at === undefined ? 0 : t - at);
    // A new segment starts its stages' clocks again; the segments after it are still to come.
    const segment = 'segment' in p && p.segment ? p.segment : 1;
    if (segment !== r.segment) {
      r.segment = segment;
      r.encodeAt = r.sampleStart = r.lastStepAt = r.decodeAt = undefined;
    }
    const later = (r.segments - r.segment) * (est('encode') + est('sample') + est('decode'));
    const writing = () => later + videoFormats.reduce((sum, f) => sum + est(f), 0);
    let ms: number;
    switch (p.stage) {
      case 'loading':
        ms = est('encode') + est('sample') + est('decode') + writing();
        break;
      case 'encoding':
        r.encodeAt ??= t;
        ms = Math.max(0, est('encode') - since(r.encodeAt)) + est('sample') + est('decode') + writing();
        break;
      case 'sampling': {
        r.sampleStart ??= t - p.elapsedMs;
        r.lastStepAt = t;
        // This job's own pace from its second step on (the first carries one-off work).
        if (p.step > 1) setPace(p.elapsedMs / p.step, (r.rates.sample * r.work.sample) / r.steps);
        const perStep = p.step > 1 ? p.elapsedMs / p.step : est('sample') / r.steps;
        ms = perStep * (p.steps - p.step) + est('decode') + writing();
        break;
      }
      case 'decoding': {
        r.decodeAt ??= t;
        const elapsed = since(r.decodeAt);
        // Chunk k has begun, so k - 1 are done: from then on this job's own pace (the first chunk
        // of a new size also opens its decoder, which the learned rate may or may not include).
        if (p.chunk > 1) setPace(elapsed / (p.chunk - 1), (r.rates.decode * r.work.decode) / p.chunks);
        const left = p.chunk > 1 ? (elapsed * (p.chunks - p.chunk + 1)) / (p.chunk - 1) : est('decode') - elapsed;
        ms = Math.max(0, left) + writing();
        break;
      }
      case 'interpolating': {
        // From the second pair on, this job's own pace for the pairs left.
        r.interpolateAt ??= t;
        const left = p.pair > 1 ? (since(r.interpolateAt) * (p.pairs - p.pair)) / (p.pair - 1) : 0;
        ms = left + videoFormats.reduce((sum, f) => sum + est(f), 0);
        break;
      }
      case 'writing': {
        const format = p.format ?? r.writes.at(-1)?.format;
        if (format && !r.writes.some((w) => w.format === format)) r.writes.push({ format, at: t });
        // The format being written, less its time so far, and those still to come; once one is
        // written, ffmpeg's pace on it (against its learned rate) scales the rest.
        const done = new Set(r.writes.map((w) => w.format));
        const now = r.writes.at(-1);
        const before = r.writes.slice(0, -1);
        const expected = before.reduce((sum, w) => sum + est(w.format), 0);
        const pace = before.length && expected > 0 ? Math.min(2, Math.max(0.5, (now!.at - before[0]!.at) / expected)) : 1;
        ms = pace * ((now ? Math.max(0, est(now.format) - since(now.at) / pace) : 0) + videoFormats.filter((f) => !done.has(f)).reduce((sum, f) => sum + est(f), 0));
        break;
      }
    }
    ms = Math.round(Math.max(0, ms));
    r.remaining = { ms, at: t };
    return { ...p, remainingMs: ms };
  }

  /** A queued job: the time until a worker takes it (the jobs running and those ahead), and to its end. */
  queued(ahead: JobRecord[], job: JobRecord): { startsInMs: number; remainingMs: number } {
    const t = this.now();
    let busy = 0;
    for (const r of this.running.values()) busy += Math.max(0, r.remaining.ms - (t - r.remaining.at));
    for (const j of ahead) busy += this.total(j);
    const startsInMs = Math.round(busy / Math.max(1, this.ctx.parallel()));
    return { startsInMs, remainingMs: startsInMs + Math.round(this.total(job)) };
  }

  /**
   * A job ended: a job that finished teaches the machine's rates (each stage's time over its
   * work); any other is forgotten.
   */
  finish(job: JobRecord): void {
    const r = this.running.get(job.id);
    this.running.delete(job.id);
    const first = r?.writes[0];
    if (!r || !first || job.status !== 'done' || r.encodeAt === undefined || r.sampleStart === undefined || r.decodeAt === undefined) return;
    // Several segments, or the interpolator's time inside the decode's: their stage times are not one clip's.
    if (job.settings.extend > 1 || job.settings.interpolate > 1) return;
    const took: Partial<Rates> = { encode: r.sampleStart - r.encodeAt, sample: r.decodeAt - r.sampleStart, decode: first.at - r.decodeAt };
    r.writes.forEach((w, i) => (took[w.format] = (r.writes[i + 1]?.at ?? this.now()) - w.at));
    const old = this.stats.machines[r.key]?.rates;
    const rates: Stats['machines'][string]['rates'] = { ...old } as Stats['machines'][string]['rates'];
    for (const s of STAGES) {
      const ms = took[s];
      if (ms === undefined || r.work[s] <= 0) continue;
      const observed = Math.max(ms, 1e-3) / r.work[s];
      const before = old?.[s];
      rates[s] = before === undefined ? observed : before * (1 - LEARN) + observed * LEARN;
    }
    this.stats.machines[r.key] = { rates, jobs: (this.stats.machines[r.key]?.jobs ?? 0) + 1 };
    try {
      writeFileAtomic(join(this.dir, STATS_FILE), JSON.stringify(this.stats, null, 2));
    } catch {
      // A full disk: the rates stay learned in memory for this run.
    }
  }
}

/** The estimator as the server uses it: jobs run on the first worker's card (or the CPU). */
export function serverEta(
  dir: string,
  o: { slots: { deviceId?: number }[]; gpus: { index: number; name: string; memoryTotalMiB: number }[]; models: { name: string; demo: boolean; frames: number }[] },
): EtaEstimator {
  const card = o.gpus.find((g) => g.index === o.slots[0]?.deviceId);
  const model = (name: string | undefined) => o.models.find((m) => m.name === name) ?? o.models[0];
  const cpu = cpus();
  return new EtaEstimator(dir, {
    machine: (name) => {
      const demo = model(name)?.demo ?? false;
      return card ? { name: card.name, kind: 'gpu', memoryMiB: card.memoryTotalMiB, demo } : { name: `${cpu[0]?.model.trim() ?? 'CPU'} x ${cpu.length}`, kind: 'cpu', cores: cpu.length, demo };
    },
    frames: (name) => model(name)?.frames ?? 14,
    parallel: () => o.slots.length,
  });
}
