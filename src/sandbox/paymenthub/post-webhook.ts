import { request } from "node:http";

/** One delivery attempt's outcome: a status, or why no status came back. */
export type PostOutcome = { readonly status: number; readonly body: string } | { readonly error: string };

/**
 * POSTs `body` once to `url` (http only: the emulator talks to loopback).
 * No keep-alive agent, so a closed receiver is never left with our sockets.
 */
export function postWebhook(
  url: string,
  body: Buffer,
  headers: Readonly<Record<string, string>>,
  timeoutMs: number,
): Promise<PostOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (outcome: PostOutcome): void => {
      if (!settled) {
        settled = true;
        resolve(outcome);
      }
    };
    let req;
    try {
      req = request(url, {
        method: "POST",
        agent: false,
        headers: { "content-length": String(body.length), ...headers },
        timeout: timeoutMs,
      });
    } catch (error) {
      finish({ error: error instanceof Error ? error.message : String(error) });
      return;
    }
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => finish({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", (error) => finish({ error: error.message }));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (error) => finish({ error: error.message }));
    req.end(body);
  });
}
