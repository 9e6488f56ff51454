/**
 * A scripted HTTP server for faults a real MLflow server cannot produce on demand: dropped connections, 429 with
 * Retry-After, 503s, 401/403, hanging responses. Everything else is tested against the real server.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface FakeRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  /** Milliseconds since the fake started. */
  readonly at: number;
}

/** What the fake does with request number `n` (0-based). */
export type FakeAction =
  | {
      readonly status: number; readonly json?: unknown; readonly body?: string; readonly headers?: Record<string, string>;
      /** A slow server: wait this long before answering. */
      readonly delayMs?: number;
      /** A slow link: send the body in `chunks` pieces, one every `everyMs` ms, after the headers. */
      readonly trickle?: { readonly chunks: number; readonly everyMs: number };
    }
  | { readonly drop: true }
  | { readonly hang: true };

export interface FakeMlflow {
  readonly uri: string;
  readonly requests: FakeRequest[];
  close(): Promise<void>;
}

/** Starts the fake; with `tls` it serves https with that key/certificate. */
export async function startFakeMlflow(script: (req: FakeRequest, n: number) => FakeAction, options: { tls?: { key: string | Buffer; cert: string | Buffer } } = {}): Promise<FakeMlflow> {
  const requests: FakeRequest[] = [];
  const t0 = Date.now();
  const sockets = new Set<import('node:net').Socket>();
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const fr: FakeRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() - t0 };
      const n = requests.length;
      requests.push(fr);
      const action = script(fr, n);
      if ('drop' in action) return req.socket.destroy();
      if ('hang' in action) return;
      const answer = (): void => {
        res.writeHead(action.status, { 'Content-Type': 'application/json', ...(action.headers ?? {}) });
        const text = Buffer.from(action.body ?? JSON.stringify(action.json ?? {}));
        if (!action.trickle) return void res.end(text);
        const { chunks, everyMs } = action.trickle;
        const size = Math.ceil(text.length / chunks);
        let sent = 0;
        const next = (): void => {
          if (res.destroyed) return;
          const piece = text.subarray(sent * size, (sent + 1) * size);
          sent++;
          if (sent >= chunks) res.end(piece);
          else {
            res.write(piece);
            setTimeout(next, everyMs);
          }
        };
        next();
      };
      if (action.delayMs) setTimeout(answer, action.delayMs);
      else answer();
    });
  };
  const server = options.tls ? https.createServer(options.tls, handler) : http.createServer(handler);
  server.on(options.tls ? 'secureConnection' : 'connection', (s: import('node:net').Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    uri: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A minimal HTTP CONNECT proxy (for https through HTTP(S)_PROXY); records the CONNECT targets. */
export async function startConnectProxy(): Promise<{ uri: string; targets: string[]; close(): Promise<void> }> {
  const targets: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((_req, res) => {
    res.writeHead(405);
    res.end();
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    targets.push(req.url ?? '');
    const [host, port] = (req.url ?? '').split(':');
    const upstream = net.connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => sockets.delete(s));
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    uri: `http://127.0.0.1:${port}`,
    targets,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
