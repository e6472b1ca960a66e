/** Path of a value inside the parsed YAML: keys and list indexes. */
export type ConfigPath = readonly (string | number)[];

/** A problem found while interpolating, at the path of the string that has it. */
export interface InterpolationProblem {
  readonly path: ConfigPath;
  readonly message: string;
}

/** The interpolated tree, and what is needed to keep environment values out of messages. */
export interface InterpolationResult {
  /** The input with every `${NAME}` replaced; unresolvable references are left as written. */
  readonly value: unknown;
  readonly problems: readonly InterpolationProblem[];
  /** Paths of the strings that took at least one value from the environment: never echo them. */
  readonly interpolatedPaths: readonly ConfigPath[];
  /** The environment values that were substituted, for redaction by value. */
  readonly envValues: readonly string[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Replaces `${NAME}` in every string value (not in keys) of a parsed YAML
 * tree with `env[NAME]`. `$${NAME}` stands for a literal `${NAME}`. An unset
 * variable, or a `${` without a valid name and closing brace, is a problem at
 * the path of the string. The environment is passed in so this stays pure.
 */
export function interpolateEnv(input: unknown, env: Readonly<Record<string, string | undefined>>): InterpolationResult {
  const problems: InterpolationProblem[] = [];
  const interpolatedPaths: ConfigPath[] = [];
  const envValues: string[] = [];

  const interpolateString = (text: string, path: ConfigPath): string => {
    if (!text.includes("${")) return text;
    let out = "";
    let fromEnv = false;
    let i = 0;
    while (i < text.length) {
      if (text.startsWith("$${", i)) {
        out += "${";
        i += 3;
        continue;
      }
      if (!text.startsWith("${", i)) {
        out += text[i];
        i++;
        continue;
      }
      const end = text.indexOf("}", i + 2);
      const name = end === -1 ? "" : text.slice(i + 2, end);
      if (!NAME.test(name)) {
        problems.push({ path, message: "invalid ${...} reference: write ${NAME} with letters, digits and _ (or $${ for a literal ${)" });
        out += "${";
        i += 2;
        continue;
      }
      const value = env[name];
      if (value === undefined) {
        problems.push({ path, message: `environment variable ${name} is not set` });
        out += text.slice(i, end + 1);
      } else {
        out += value;
        fromEnv = true;
        if (value !== "") envValues.push(value);
      }
      i = end + 1;
    }
    if (fromEnv) interpolatedPaths.push(path);
    return out;
  };

  const visit = (node: unknown, path: ConfigPath): unknown => {
    if (typeof node === "string") return interpolateString(node, path);
    if (Array.isArray(node)) return node.map((item: unknown, index) => visit(item, [...path, index]));
    if (node !== null && typeof node === "object") {
      // fromEntries defines own properties, so a `__proto__` key stays a key (and is then rejected as unknown).
      return Object.fromEntries(Object.entries(node).map(([key, child]) => [key, visit(child, [...path, key])]));
    }
    return node;
  };

  return { value: visit(input, []), problems, interpolatedPaths, envValues };
}
