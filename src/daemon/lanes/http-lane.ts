import { createHttpTarget } from "../../adapters/http/create-http-target.js";
import type { LaneFactory } from "./lane-factory.js";

/** The `http` target: signed grant/revoke events for custom integrations. */
export const createHttpLane: LaneFactory = async (loaded) => {
  const http = loaded.config.targets.http;
  if (!http || Object.keys(http.endpoints).length === 0) return undefined;
  const endpoints = Object.fromEntries(Object.entries(http.endpoints).map(([name, e]) => [name, { url: e.url, secret: e.secret, timeoutMs: e.timeout }]));
  return createHttpTarget({ endpoints });
};
