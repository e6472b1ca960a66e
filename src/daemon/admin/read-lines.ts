import type { Socket } from "node:net";

/**
 * Reads the admin protocol's newline-delimited messages from `socket` (UTF-8), calling `onLine`
 * for each complete line. A partial line longer than `maxLength` characters (a runaway peer) is
 * dropped and reported to `onTooLong`, which decides what happens to the connection.
 */
export function readLines(socket: Socket, onLine: (line: string) => void, limit?: { readonly maxLength: number; readonly onTooLong: () => void }): void {
  let buffered = "";
  socket.setEncoding("utf8");
  socket.on("data", (chunk: string) => {
    buffered += chunk;
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      onLine(line);
    }
    if (limit !== undefined && buffered.length > limit.maxLength) {
      buffered = "";
      limit.onTooLong();
    }
  });
}
