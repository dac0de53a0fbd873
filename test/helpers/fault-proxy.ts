// A TCP proxy on 127.0.0.1 in front of a real server (the storage emulator) that breaks
// connections the way a flaky hospital uplink does: at chosen points in the client-to-server
// byte stream it forwards the bytes before the point, then resets both sockets (RST, not a
// clean close). The points are drawn from a seeded generator, so a failing run reproduces with
// its seed. It can also hold the stream at a byte count (the test then kills the client there),
// and it counts the bytes it forwarded each way.
import { createServer, connect, type Server, type Socket } from 'node:net';

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FaultProxyOptions {
  readonly targetPort: number;
  readonly targetHost?: string;
  /** How many connections to reset. */
  readonly cuts?: number;
  readonly seed?: number;
  /** Cut points are uniform in [from, to) of the bytes sent upstream (over all connections). */
  readonly cutBetween?: readonly [number, number];
}

export class FaultProxy {
  readonly #server: Server;
  readonly #targetHost: string;
  readonly #targetPort: number;
  readonly #sockets = new Set<Socket>();
  /** Upstream byte counts at which to cut, ascending; consumed as they fire. */
  readonly #cutPoints: number[];
  #upstreamBytes = 0;
  #downstreamBytes = 0;
  #cutsDone = 0;
  #hold: { at: number; reached: () => void } | undefined;
  #held: { client: Socket; upstream: Socket; rest: Buffer }[] = [];
  port = 0;

  private constructor(options: FaultProxyOptions) {
    this.#targetHost = options.targetHost ?? '127.0.0.1';
    this.#targetPort = options.targetPort;
    const random = seededRandom(options.seed ?? 1);
    const [from, to] = options.cutBetween ?? [0, 0];
    this.#cutPoints = Array.from({ length: options.cuts ?? 0 }, () =>
      Math.floor(from + random() * (to - from)),
    ).sort((a, b) => a - b);
    this.#server = createServer((client) => this.#accept(client));
  }

  static async start(options: FaultProxyOptions): Promise<FaultProxy> {
    const proxy = new FaultProxy(options);
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once('error', reject);
      proxy.#server.listen(0, '127.0.0.1', () => resolve());
    });
    proxy.port = (proxy.#server.address() as { port: number }).port;
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  /** The points still to fire, and those that did. */
  get cutPoints(): readonly number[] {
    return [...this.#cutPoints];
  }
  get cutsDone(): number {
    return this.#cutsDone;
  }
  get upstreamBytes(): number {
    return this.#upstreamBytes;
  }
  get downstreamBytes(): number {
    return this.#downstreamBytes;
  }

  /**
   * Stops forwarding once `bytes` more have gone upstream, and resolves then. The held
   * connection stays open and silent until release(), which forwards what the client had
   * already sent (as its kernel would after it died) and then its end.
   */
  holdAfter(bytes: number): Promise<void> {
    return new Promise((resolve) => {
      this.#hold = { at: this.#upstreamBytes + bytes, reached: resolve };
    });
  }

  release(): void {
    this.#hold = undefined;
    for (const { client, upstream, rest } of this.#held.splice(0)) {
      if (!upstream.destroyed) this.#forwardUp(client, upstream, rest);
      client.resume();
    }
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    const upstream = connect(this.#targetPort, this.#targetHost);
    this.#sockets.add(client).add(upstream);
    const forget = (socket: Socket) => () => this.#sockets.delete(socket);
    client.once('close', forget(client));
    upstream.once('close', forget(upstream));
    let cutting = false;
    const cut = () => {
      this.#cutsDone++;
      client.resetAndDestroy();
      upstream.resetAndDestroy();
    };
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());

    client.on('data', (data: Buffer) => {
      if (cutting) return;
      const hold = this.#hold;
      if (hold && this.#upstreamBytes + data.length >= hold.at) {
        const keep = hold.at - this.#upstreamBytes;
        this.#forwardUp(client, upstream, data.subarray(0, keep));
        client.pause();
        // TCP never loses bytes from the middle of a stream: the rest goes on release.
        this.#held.push({ client, upstream, rest: data.subarray(keep) });
        this.#hold = undefined;
        hold.reached();
        return;
      }
      const next = this.#cutPoints[0];
      if (next !== undefined && this.#upstreamBytes + data.length > next) {
        this.#cutPoints.shift();
        cutting = true; // nothing after the cut point goes through
        client.pause();
        this.#forwardUp(client, upstream, data.subarray(0, next - this.#upstreamBytes));
        // The bytes before the cut reach the server first, as they would on a real link.
        upstream.write(Buffer.alloc(0), () => cut());
        return;
      }
      this.#forwardUp(client, upstream, data);
    });
    upstream.on('data', (data: Buffer) => {
      this.#downstreamBytes += data.length;
      if (!client.write(data)) {
        upstream.pause();
        client.once('drain', () => upstream.resume());
      }
    });
  }

  #forwardUp(client: Socket, upstream: Socket, piece: Buffer): void {
    if (piece.length === 0) return;
    this.#upstreamBytes += piece.length;
    if (!upstream.write(piece)) {
      client.pause();
      upstream.once('drain', () => {
        if (!this.#held.some((held) => held.client === client) && !client.destroyed) client.resume();
      });
    }
  }
}
