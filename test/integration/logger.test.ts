import { describe, expect, it } from "vitest";
import { REDACTED, createLogger } from "../../src/daemon/create-logger.js";

function capture(): { lines: string[]; write: (line: string) => void } {
  const lines: string[] = [];
  return { lines, write: (line) => void lines.push(line) };
}

const SECRET = "tok_live_5f3a9c";

describe("createLogger", () => {
  it("writes one JSON object per line at the configured level", () => {
    const out = capture();
    const logger = createLogger({ level: "info", format: "json", destination: out });
    logger.debug("hidden");
    logger.info({ member: "m1" }, "granted");
    expect(out.lines).toHaveLength(1);
    const line = out.lines[0] ?? "";
    expect(line.endsWith("\n")).toBe(true);
    expect(JSON.parse(line)).toMatchObject({ level: 30, msg: "granted", member: "m1" });
  });

  it("redacts every secret by value wherever it appears", () => {
    const out = capture();
    const secrets = [SECRET, 'pa"ss\\word', "a b/c+d"];
    const logger = createLogger({ level: "trace", format: "json", secrets, destination: out });
    logger.info({ token: SECRET }, "object field");
    logger.info({ deep: { nested: [{ header: `Bearer ${SECRET}` }] } }, "nested field");
    logger.error(new Error(`request failed with key ${SECRET}`), "error as object");
    logger.error({ err: new Error(`denied for ${SECRET}`) }, "error in err");
    logger.warn({ url: `https://api.example.test/v1/members?key=${encodeURIComponent(SECRET)}` }, "url");
    logger.info(`message mentioning ${SECRET} inline`);
    logger.child({ apiKey: SECRET }).info("child binding");
    logger.info({ password: 'pa"ss\\word', url: `http://x.test/?q=${encodeURIComponent("a b/c+d")}` }, "escaped");

    expect(out.lines).toHaveLength(8);
    const all = out.lines.join("");
    for (const secret of secrets) {
      expect(all).not.toContain(secret);
      expect(all).not.toContain(JSON.stringify(secret).slice(1, -1));
      expect(all).not.toContain(encodeURIComponent(secret));
    }
    // The lines stay valid JSON, and the stack was there to be redacted.
    const parsed = out.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(parsed[0]).toMatchObject({ token: REDACTED });
    expect(parsed[2]).toMatchObject({ err: { message: `request failed with key ${REDACTED}` } });
    expect(String((parsed[2]?.err as { stack?: unknown }).stack)).toContain(`request failed with key ${REDACTED}`);
    expect(parsed[6]).toMatchObject({ apiKey: REDACTED });
  });

  it("replaces a secret that contains another secret whole", () => {
    const out = capture();
    const logger = createLogger({ level: "info", format: "json", secrets: ["abcd", "xxabcdxx", ""], destination: out });
    logger.info({ a: "xxabcdxx", b: "abcd", c: "" }, "m");
    expect(JSON.parse(out.lines[0] ?? "")).toMatchObject({ a: REDACTED, b: REDACTED, c: "" });
  });

  it("prints readable lines in pretty format, still redacted and synchronously", () => {
    const out = capture();
    const logger = createLogger({ level: "info", format: "pretty", secrets: [SECRET], destination: out });
    logger.info({ url: `http://127.0.0.1/?t=${SECRET}` }, "listening");
    logger.error(new Error(`boom ${SECRET}`));
    const text = out.lines.join("");
    expect(text).toContain("INFO");
    expect(text).toContain("listening");
    expect(text).toContain("ERROR");
    expect(text).toContain(`boom ${REDACTED}`);
    expect(text).not.toContain(SECRET);
    expect(() => JSON.parse(out.lines[0] ?? "")).toThrow();
  });
});
