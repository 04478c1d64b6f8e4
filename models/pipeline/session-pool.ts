// Owns the onnxruntime sessions of one model: which are open, when they are opened and closed
// (all together, or each stage's alone so no stage shares the card with another's memory), and
// the decoder's sessions per chunk length. Every session it hands out checks its feeds against
// the network's declared inputs (networks/contracts.ts), and its names when it is opened.
import { statSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import type { NetworkName } from '../build.js';
import { checkFeeds, checkSessionNames, type NetworkContract } from '../networks/contracts.js';

/** A network's session, fed by name as its contract declares. */
export class NetworkSession {
  constructor(
    readonly network: NetworkName,
    private readonly contract: NetworkContract,
    readonly session: ort.InferenceSession,
  ) {
    checkSessionNames(network, contract, session);
  }

  /** Runs the network on `feeds` (checked first), fetching `fetches` or every output. */
  run(feeds: Record<string, ort.Tensor>, fetches?: readonly string[]): Promise<ort.InferenceSession.OnnxValueMapType> {
    checkFeeds(this.network, this.contract, feeds);
    return fetches ? this.session.run(feeds, [...fetches]) : this.session.run(feeds);
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

export type SessionsLayout = 'shared' | 'separate';

export class SessionPool {
  private open: Partial<Record<NetworkName, NetworkSession>> = {};
  /** Extra decoder sessions, by chunk length (the main one serves the first length asked). */
  private decoders = new Map<number, NetworkSession>();
  private mainDecoderFrames: number | undefined;
  private released = false;

  constructor(
    readonly files: Record<NetworkName, string>,
    private readonly contracts: Record<NetworkName, NetworkContract>,
    private readonly options: () => ort.InferenceSession.SessionOptions,
    private layout: SessionsLayout,
  ) {}

  /** Keeps the networks open together or opens each stage's alone from the next stage on (a job's plan says which); a change closes what is open. */
  async useLayout(layout: SessionsLayout): Promise<void> {
    if (layout === this.layout) return;
    await this.close();
    this.layout = layout;
  }

  /** Size of a network's weights on disk (its external data file), MiB. */
  weightsMiB(network: NetworkName): number {
    return (this.weightSizes[network] ??= this.readWeightsMiB(network));
  }

  private weightSizes: Partial<Record<NetworkName, number>> = {};

  private readWeightsMiB(network: NetworkName): number {
    const path = this.files[network];
    let bytes = 0;
    for (const p of [path, `${path}_data`]) {
      try {
        bytes += statSync(p).size;
      } catch {
        // no external data: the weights are inside the .onnx file
      }
    }
    return bytes / 2 ** 20;
  }

  /**
   * Makes `networks` available for the next stage. With separate sessions anything else open is
   * closed first (its memory goes back to the card); shared sessions open everything once.
   * Returns the milliseconds spent opening and closing.
   */
  async enterStage(networks: readonly NetworkName[], say: (message: string) => void): Promise<number> {
    const t = performance.now();
    if (this.layout === 'separate') {
      const others = (Object.keys(this.open) as NetworkName[]).filter((n) => !networks.includes(n));
      if (others.length || this.decoders.size) {
        say(`closing ${others.join(', ') || 'vae_decoder'} to free the GPU memory held for ${others.length > 1 ? 'them' : 'it'}`);
        await this.close(others);
      }
      await this.openAll(networks, say);
    } else {
      await this.openAll(Object.keys(this.files) as NetworkName[], say);
    }
    return performance.now() - t;
  }

  async openAll(networks: readonly NetworkName[], say: (message: string) => void = () => {}): Promise<void> {
    if (this.released) throw new Error('pipeline already released');
    for (const network of networks) {
      if (this.open[network]) continue;
      say(`loading ${network}`);
      this.open[network] = await this.create(network);
    }
  }

  private async create(network: NetworkName): Promise<NetworkSession> {
    const session = await ort.InferenceSession.create(this.files[network], this.options());
    try {
      return new NetworkSession(network, this.contracts[network], session);
    } catch (err) {
      await session.release();
      throw err;
    }
  }

  get(network: NetworkName): NetworkSession {
    const s = this.open[network];
    if (!s) throw new Error(this.released ? 'pipeline already released' : `${network} is not open`);
    return s;
  }

  /**
   * The decoder for chunks of `frames` frames. With `perShape`, each chunk length gets a session
   * of its own, so no session's input shape ever changes.
   */
  async decoder(frames: number, perShape: boolean): Promise<NetworkSession> {
    const main = this.get('vae_decoder');
    if (!perShape) return main;
    this.mainDecoderFrames ??= frames;
    if (frames === this.mainDecoderFrames) return main;
    let s = this.decoders.get(frames);
    // A few lengths at most (the full chunk and the last one); other lengths share the main one.
    if (!s && this.decoders.size >= 2) return main;
    if (!s) {
      s = await this.create('vae_decoder');
      this.decoders.set(frames, s);
    }
    return s;
  }

  async close(networks: readonly NetworkName[] = Object.keys(this.open) as NetworkName[]): Promise<void> {
    const closing: NetworkSession[] = [];
    for (const n of networks) {
      const s = this.open[n];
      if (s) closing.push(s);
      delete this.open[n];
    }
    if (networks.includes('vae_decoder') || this.layout === 'separate') {
      closing.push(...this.decoders.values());
      this.decoders.clear();
      this.mainDecoderFrames = undefined;
    }
    await Promise.all(closing.map((s) => s.release()));
  }

  async release(): Promise<void> {
    this.released = true;
    await this.close();
  }
}
