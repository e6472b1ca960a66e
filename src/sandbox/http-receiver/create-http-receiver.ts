import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { timingSafeEqual } from "node:crypto";
import { HTTP_SIGNATURE_HEADER, signHttpBody, type HttpPerkEvent } from "../../adapters/http/create-http-target.js";

/** A loopback receiver for the `http` target: it keeps the perks it was told about. */
export interface HttpReceiver {
  readonly url: string;
  /** Grants currently held, as `subject|kind:value`. */
  readonly held: ReadonlySet<string>;
  /** Every accepted event in arrival order (repeats included). */
  readonly received: readonly HttpPerkEvent[];
  /** Events applied, once per id (what an idempotent receiver does). */
  readonly applied: ReadonlyMap<string, HttpPerkEvent>;
  /** Answers the next `n` requests with `status`. */
  failNext(n: number, status: number): void;
  close(): Promise<void>;
}

export async function createHttpReceiver(options: { secret: string; port?: number }): Promise<HttpReceiver> {
  const held = new Set<string>();
  const received: HttpPerkEvent[] = [];
  const applied = new Map<string, HttpPerkEvent>();
  let failures: { n: number; status: number } = { n: 0, status: 500 };

  const server: Server = createServer((req, res) => {
    void readBody(req).then((body) => {
      if (failures.n > 0) {
        failures = { ...failures, n: failures.n - 1 };
        res.writeHead(failures.status).end();
        return;
      }
      const expected = Buffer.from(signHttpBody(body, options.secret));
      const given = Buffer.from(String(req.headers[HTTP_SIGNATURE_HEADER] ?? ""));
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        res.writeHead(401).end();
        return;
      }
      const event = JSON.parse(body.toString("utf8")) as HttpPerkEvent;
      received.push(event);
      if (!applied.has(event.id)) {
        applied.set(event.id, event);
        const key = `${event.subject}|${event.perk.kind}:${event.perk.value}`;
        if (event.type === "grant") held.add(key);
        else held.delete(key);
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/perks`,
    held,
    received,
    applied,
    failNext(n, status) {
      failures = { n, status };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}
