// Renders RCON command templates such as `lp user {uuid} parent add {group}`.
//
// Placeholder values come from member metadata, which members can edit themselves, so every
// value is checked against the strict shape Minecraft itself accepts before it goes anywhere
// near a server console: a name with a newline or a space in it (`bob\nop eve`) would otherwise
// be a second command. Anything that does not fit is refused and nothing is rendered.

/** The placeholders a template may use. */
export const PLACEHOLDERS = ["uuid", "name", "group", "member", "plan"] as const;

/** One placeholder name. */
export type Placeholder = (typeof PLACEHOLDERS)[number];

/** Values to fill in; a missing one is reported when the template needs it. */
export type PlaceholderValues = Partial<Readonly<Record<Placeholder, string>>>;

/** The shape each value must have, and how to say so to an admin. */
const SHAPES: Readonly<Record<Placeholder, { readonly pattern: RegExp; readonly expected: string }>> = {
  // Dashed UUID, either case (normalized to lower case by the caller's identity parser).
  uuid: {
    pattern: /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/,
    expected: "a dashed UUID (8-4-4-4-12 hex digits)",
  },
  // Minecraft's own rule for Java Edition player names.
  name: { pattern: /^[A-Za-z0-9_]{3,16}$/, expected: "a Minecraft name: 3 to 16 of A-Z a-z 0-9 _" },
  // LuckPerms group names are lower-cased identifiers; `-` and `.` occur in real setups.
  group: { pattern: /^[A-Za-z0-9_.-]{1,64}$/, expected: "a group name: 1 to 64 of A-Z a-z 0-9 _ . -" },
  // A member key such as `paymenthub:mem_123`.
  member: { pattern: /^[A-Za-z0-9_.:-]{1,128}$/, expected: "a member key: 1 to 128 of A-Z a-z 0-9 _ . : -" },
  plan: { pattern: /^[A-Za-z0-9_.-]{1,64}$/, expected: "a plan id: 1 to 64 of A-Z a-z 0-9 _ . -" },
};

/** The commands a server runs by default: LuckPerms for groups, vanilla for the whitelist. */
export interface CommandSet {
  readonly group_add: string;
  readonly group_remove: string;
  /** Read-back of a user's groups, used when a LuckPerms reply is empty (async LuckPerms). */
  readonly group_info: string;
  readonly whitelist_add: string;
  readonly whitelist_remove: string;
  /** Read-back of the whitelist. */
  readonly whitelist_list: string;
}

/** Defaults: LuckPerms and vanilla. A Velocity/BungeeCord proxy with an RCON plugin uses `lpv`/`lpb` instead. */
export const DEFAULT_COMMANDS: CommandSet = {
  group_add: "lp user {uuid} parent add {group}",
  group_remove: "lp user {uuid} parent remove {group}",
  group_info: "lp user {uuid} parent info",
  whitelist_add: "whitelist add {name}",
  whitelist_remove: "whitelist remove {name}",
  whitelist_list: "whitelist list",
};

/** Outcome of {@link renderCommand}: the command, or why there is none. */
export type RenderResult =
  | { readonly ok: true; readonly command: string }
  | {
      readonly ok: false;
      /** `missing`: the value is not known yet; `invalid`: it is known and refused; `template`: the template itself is wrong. */
      readonly problem: "missing" | "invalid" | "template";
      readonly placeholder?: string;
      readonly reason: string;
    };

const TOKEN = /\{([^{}]*)\}/g;
// Control characters in a template would split the console line just like an injected value.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** True when `value` has the shape that placeholder requires. */
export function isValidPlaceholderValue(placeholder: Placeholder, value: string): boolean {
  return SHAPES[placeholder].pattern.test(value);
}

/** Shows an untrusted value in a message without letting it break the line or run long. */
export function describeValue(value: string): string {
  const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
  return JSON.stringify(shown);
}

/** Checks a template once, at config time: known placeholders only, no control characters. */
export function checkTemplate(template: string): RenderResult {
  if (template.trim() === "") return { ok: false, problem: "template", reason: "the command template is empty" };
  if (CONTROL.test(template)) {
    return { ok: false, problem: "template", reason: "the command template contains a control character (newline, tab, …)" };
  }
  for (const match of template.matchAll(TOKEN)) {
    const name = match[1] ?? "";
    if (!(PLACEHOLDERS as readonly string[]).includes(name)) {
      return {
        ok: false,
        problem: "template",
        placeholder: name,
        reason: `unknown placeholder {${name}} in ${describeValue(template)}; known: ${PLACEHOLDERS.map((p) => `{${p}}`).join(", ")}`,
      };
    }
  }
  return { ok: true, command: template };
}

/**
 * Fills a template. Every placeholder the template uses must have a value of the right shape;
 * otherwise nothing is rendered and the reason says which value and why.
 */
export function renderCommand(template: string, values: PlaceholderValues): RenderResult {
  const checked = checkTemplate(template);
  if (!checked.ok) return checked;
  for (const match of template.matchAll(TOKEN)) {
    const name = match[1] as Placeholder;
    const value = values[name];
    if (value === undefined || value === "") {
      return { ok: false, problem: "missing", placeholder: name, reason: `{${name}} is not known yet` };
    }
    if (!isValidPlaceholderValue(name, value)) {
      return {
        ok: false,
        problem: "invalid",
        placeholder: name,
        reason: `refused {${name}} value ${describeValue(value)}: expected ${SHAPES[name].expected}; no command was sent`,
      };
    }
  }
  const command = template.replace(TOKEN, (_whole, name: string) => values[name as Placeholder] ?? "");
  return { ok: true, command: command.trim() };
}
