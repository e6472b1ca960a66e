/**
 * The one base class of perkbridge's exceptions. Exceptions are for the
 * unexpected; expected outcomes are values (see {@link SyncResult}).
 * Classify by `code` or `instanceof`, never by message text.
 */
export class PerkbridgeError extends Error {
  readonly code: string;

  constructor(code: `ERR_${string}`, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = `PerkbridgeError [${code}]`;
  }
}
