import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  displayWidth,
  formatAgo,
  formatDuration,
  formatList,
  formatTable,
  formatTime,
  plural,
  sanitizeCell,
  type Column,
} from "../../src/cli/format-table.js";

describe("formatTable", () => {
  it.each<{ name: string; columns: Column[]; rows: string[][]; indent?: string; expected: string }>([
    {
      name: "pads columns to the widest cell, two spaces apart, no trailing spaces",
      columns: [{ header: "LANE" }, { header: "QUEUED", align: "right" }],
      rows: [
        ["discord", "3"],
        ["minecraft:survival", "1,200"],
      ],
      expected: "LANE                QUEUED\ndiscord                  3\nminecraft:survival   1,200\n",
    },
    {
      name: "header only when there are no rows",
      columns: [{ header: "A" }, { header: "B" }],
      rows: [],
      expected: "A  B\n",
    },
    {
      name: "short rows get empty cells, and the indent goes before every line",
      columns: [{ header: "ID" }, { header: "REASON" }, { header: "FIX" }],
      rows: [["a1", "denied"], ["b", "x", "y"]],
      indent: "  ",
      expected: "  ID  REASON  FIX\n  a1  denied\n  b   x       y\n",
    },
    {
      name: "glyphs and accents count as one column",
      columns: [{ header: "" }, { header: "TARGET" }],
      rows: [["✓", "café"], ["✗", "fivem"]],
      expected: "   TARGET\n✓  café\n✗  fivem\n",
    },
    {
      name: "control characters cannot break lines or reach the terminal",
      columns: [{ header: "NAME" }, { header: "N" }],
      rows: [["evil\x1b[31m\nname", "1"]],
      expected: "NAME            N\nevil [31m name  1\n",
    },
  ])("$name", ({ columns, rows, indent, expected }) => {
    expect(formatTable(columns, rows, indent === undefined ? {} : { indent })).toBe(expected);
  });

  it("puts every cell of a column at the same offset on every line", () => {
    const cell = fc.stringMatching(/^[a-z0-9✓é:-]{1,10}$/);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }).chain((width) =>
          fc.tuple(fc.array(cell, { minLength: width, maxLength: width }), fc.array(fc.array(cell, { minLength: width, maxLength: width }), { maxLength: 8 })),
        ),
        ([headers, rows]) => {
          const lines = formatTable(headers.map((header) => ({ header })), rows).split("\n");
          expect(lines.pop()).toBe("");
          const widths = headers.map((h, i) => Math.max(displayWidth(h), ...rows.map((r) => displayWidth(r[i] ?? ""))));
          [headers, ...rows].forEach((cells, lineIndex) => {
            const chars = [...(lines[lineIndex] ?? "")];
            let offset = 0;
            cells.forEach((c, i) => {
              expect(chars.slice(offset, offset + displayWidth(c)).join("")).toBe(c);
              offset += (widths[i] ?? 0) + 2;
            });
          });
        },
      ),
    );
  });
});

describe("sanitizeCell", () => {
  it.each([
    ["plain text", "plain text"],
    ["a\r\nb", "a b"],
    ["tab\there", "tab here"],
    ["\x1b]0;title\x07", " ]0;title "],
    ["c1\u009bcontrol", "c1 control"],
    ["line\u2028sep", "line sep"],
  ])("%j → %j", (input, expected) => {
    expect(sanitizeCell(input)).toBe(expected);
  });
});

describe("formatDuration", () => {
  it.each([
    [3_600_000, "1h"],
    [60_000, "1m"],
    [90_000, "90s"],
    [86_400_000, "1d"],
    [250, "250ms"],
    [1_500, "2s"],
  ])("%d ms → %s", (ms, expected) => {
    expect(formatDuration(ms)).toBe(expected);
  });
});

describe("formatAgo", () => {
  const now = 1_000_000_000_000;
  it.each([
    [now, "just now"],
    [now - 42_000, "42s ago"],
    [now - 5 * 60_000 - 59_000, "5m ago"],
    [now - 3 * 3_600_000, "3h ago"],
    [now - 2 * 86_400_000, "2d ago"],
    [now + 2 * 60_000, "in 2m"],
  ])("%d → %s", (time, expected) => {
    expect(formatAgo(time, now)).toBe(expected);
  });
});

describe("small formatters", () => {
  it("formatTime prints UTC to the second and survives nonsense", () => {
    expect(formatTime(Date.UTC(2025, 0, 31, 12, 0, 5, 999))).toBe("2025-01-31 12:00:05Z");
    expect(formatTime(Number.NaN)).toBe("?");
    expect(formatTime(1e300)).toBe("?");
  });

  it("formatList shortens long lists", () => {
    expect(formatList([])).toBe("");
    expect(formatList(["a", "b", "c"])).toBe("a, b, c");
    expect(formatList(["a", "b", "c", "d", "e"])).toBe("a, b, c +2 more");
  });

  it("plural counts with separators", () => {
    expect(plural(1, "grant")).toBe("1 grant");
    expect(plural(1204, "member")).toBe("1,204 members");
    expect(plural(2, "was", "were")).toBe("2 were");
  });
});
