import fc from "fast-check";
import { parse } from "node-cron";
import { describe, expect, it } from "vitest";
import {
  checkCronCadence,
  MIN_AUTO_CADENCE_MINUTES,
  planPollCadence,
  POLL_CADENCES_MINUTES,
  sweepRequests,
  type CronFields,
} from "../../src/core/poll-cadence.js";

const MINUTE = 60_000;
const HOUR = 3_600_000;

/** The run times node-cron itself reads from an expression. */
function fieldsOf(expression: string): CronFields {
  const p = parse(expression);
  return { second: p.second, minute: p.minute, hour: p.hour };
}

describe("sweepRequests", () => {
  it.each([
    [0, 1],
    [1, 1],
    [100, 1],
    [101, 2],
    [250, 3],
    [25_000, 250],
    [-5, 1],
  ])("%i members cost %i list requests", (members, requests) => {
    expect(sweepRequests(members)).toBe(requests);
  });

  it("honours the page size", () => {
    expect(sweepRequests(250, 20)).toBe(13);
  });
});

describe("planPollCadence", () => {
  it.each([
    // members, every minutes, requests/hour at that cadence
    [0, 15, 4],
    [5_000, 15, 200],
    [20_000, 15, 800],
    [20_001, 30, 402],
    [25_000, 30, 500],
    [40_000, 30, 800],
    [40_001, 60, 401],
    [80_000, 60, 800],
    [100_000, 120, 500],
    [200_000, 180, 667],
    [500_000, 720, 417],
    [1_000_000, 1440, 417],
  ])("%i members at PaymentHub's limits: every %i minutes (%i requests/hour)", (members, every, perHour) => {
    const plan = planPollCadence({ members });
    expect(plan).toMatchObject({ everyMinutes: every, requestsPerHour: perHour, budgetPerHour: 800, fits: true });
    expect(plan.warning).toBeUndefined();
  });

  it("writes a cron that node-cron accepts and that runs at the planned cadence", () => {
    for (const members of [0, 30_000, 60_000, 100_000, 200_000, 400_000, 700_000, 1_500_000]) {
      const plan = planPollCadence({ members });
      const check = checkCronCadence({ members, expression: plan.cron, fields: fieldsOf(plan.cron) });
      expect(check.minGapMs).toBe(plan.everyMinutes * MINUTE);
      expect(check.fits).toBe(true);
    }
  });

  it("falls back to once a day with a warning when even that does not fit", () => {
    const plan = planPollCadence({ members: 5_000_000 });
    expect(plan).toMatchObject({ everyMinutes: 1440, cron: "0 0 * * *", fits: false, requestsPerSweep: 50_000 });
    expect(plan.warning).toMatch(/5,000,000 members need 50,000 list requests per sweep/);
  });

  it("follows lowered limits and a different poll share", () => {
    expect(planPollCadence({ members: 2_000, windows: [{ limit: 100, windowMs: HOUR }] })).toMatchObject({ everyMinutes: 15, budgetPerHour: 80 });
    expect(planPollCadence({ members: 2_500, windows: [{ limit: 100, windowMs: HOUR }] })).toMatchObject({ everyMinutes: 30, budgetPerHour: 80 });
    expect(planPollCadence({ members: 2_500, windows: [{ limit: 100, windowMs: HOUR }], pollShare: 1 })).toMatchObject({ everyMinutes: 15, budgetPerHour: 100 });
  });

  it("waits for a sweep that the minute window stretches past the cadence", () => {
    // 10 per minute, plenty per hour: 200 pages take at least 24 minutes.
    const plan = planPollCadence({ members: 20_000, windows: [{ limit: 10, windowMs: MINUTE }, { limit: 100_000, windowMs: HOUR }] });
    expect(plan.sweepMs).toBe(24 * MINUTE);
    expect(plan.everyMinutes).toBe(30);
  });

  it("ignores unusable inputs instead of planning nonsense", () => {
    expect(planPollCadence({ members: Number.NaN, windows: [], pollShare: 7, pageSize: 0 })).toMatchObject({ everyMinutes: 15, requestsPerSweep: 1, budgetPerHour: 800 });
  });

  it("property: the plan is the most frequent allowed cadence that fits", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3_000_000 }), fc.integer({ min: 1, max: 2_000 }), fc.integer({ min: 1, max: 300 }), (members, perHour, perMinute) => {
        const input = { members, windows: [{ limit: perMinute, windowMs: MINUTE }, { limit: perHour, windowMs: HOUR }] };
        const plan = planPollCadence(input);
        expect(plan.everyMinutes).toBeGreaterThanOrEqual(MIN_AUTO_CADENCE_MINUTES);
        if (plan.fits) {
          expect(plan.requestsPerHour).toBeLessThanOrEqual(plan.budgetPerHour);
          expect(plan.sweepMs).toBeLessThanOrEqual(plan.everyMinutes * MINUTE);
          const faster = POLL_CADENCES_MINUTES.filter((m) => m >= MIN_AUTO_CADENCE_MINUTES && m < plan.everyMinutes);
          for (const m of faster) {
            const perHourAtM = Math.ceil((plan.requestsPerSweep * 60) / m);
            expect(perHourAtM > plan.budgetPerHour || plan.sweepMs > m * MINUTE).toBe(true);
          }
        } else {
          expect(plan.everyMinutes).toBe(1440);
        }
      }),
    );
  });
});

describe("checkCronCadence", () => {
  it.each([
    // expression, members, most runs in an hour, fits
    ["*/15 * * * *", 20_000, 4, true],
    ["*/15 * * * *", 20_001, 4, false],
    ["*/5 * * * *", 5_000, 12, true],
    ["*/5 * * * *", 10_000, 12, false],
    ["0 * * * *", 80_000, 1, true],
    // One sweep every 2 hours may spend two hours' budget, as auto plans it.
    ["0 */2 * * *", 100_000, 1, true],
    ["0 */2 * * *", 160_001, 1, false],
    ["0,30 9-17 * * 1-5", 40_000, 2, true],
    ["0,30 9-17 * * 1-5", 40_001, 2, false],
    // Runs bunched around midnight: 23:30, 23:45, 00:00, 00:15 are one hour of four sweeps.
    ["0,15 0 * * *", 1, 2, true],
    ["30,45 23 * * *", 1, 2, true],
  ])("%s for %i members: %i runs in the busiest hour, fits %s", (expression, members, runs, fits) => {
    const check = checkCronCadence({ members, expression, fields: fieldsOf(expression) });
    expect(check.maxRunsPerHour).toBe(runs);
    expect(check.fits).toBe(fits);
    expect(check.warning === undefined).toBe(fits);
  });

  it("counts the busiest hour across midnight", () => {
    const fields = { second: [0], minute: [0, 15, 30, 45], hour: [0, 23] };
    const check = checkCronCadence({ members: 1, expression: "0,15,30,45 0,23 * * *", fields });
    expect(check.maxRunsPerHour).toBe(4);
    expect(check.minGapMs).toBe(15 * MINUTE);
  });

  it("tells the admin what the cron needs, what polling may use and what auto would do", () => {
    const check = checkCronCadence({ members: 10_000, expression: "*/5 * * * *", fields: fieldsOf("*/5 * * * *") });
    expect(check).toMatchObject({ requestsPerSweep: 100, requestsPerHour: 1200, budgetPerHour: 800, fits: false });
    expect(check.warning).toBe(
      'poll cron "*/5 * * * *" needs 1,200 requests/hour for 10,000 members (100 per sweep, up to 12 sweeps an hour) but polling may use 800/hour. ' +
        'Sweeps will be slowed down by the rate budget and run late. Set sources.paymenthub.poll.cron to "auto" (now: every 15 minutes) or to a cron that runs less often.',
    );
  });

  it("counts every second of a six-field cron and flags sweeps that outlast the gap", () => {
    const check = checkCronCadence({ members: 10_000, expression: "*/20 * * * * *", fields: fieldsOf("*/20 * * * * *") });
    expect(check.maxRunsPerHour).toBe(180);
    expect(check.minGapMs).toBe(20_000);
    expect(check.sweepMs).toBe(MINUTE);
    expect(check.warning).toMatch(/a sweep takes at least 1 minutes within the rate limit but runs start 20 s apart/);
    expect(check.warning).toMatch(/every 15 minutes/);
  });

  it("treats a cron with no run times and odd values safely", () => {
    const none = checkCronCadence({ members: 100, expression: "x", fields: { second: [], minute: [], hour: [] } });
    expect(none).toMatchObject({ maxRunsPerHour: 0, minGapMs: 0, fits: true });
    const odd = checkCronCadence({ members: 100, expression: "y", fields: { second: [], minute: [5, 5, 61, 1.5], hour: [3] } });
    expect(odd).toMatchObject({ maxRunsPerHour: 1, minGapMs: 24 * HOUR, fits: true });
    expect(checkCronCadence({ members: 100, expression: "x", fields: { second: [0], minute: [0], hour: [1] } }).warning).toBeUndefined();
  });

  it("words a slow cron by its gap", () => {
    const check = checkCronCadence({ members: 200_000, expression: "0 */2 * * *", fields: fieldsOf("0 */2 * * *") });
    expect(check).toMatchObject({ requestsPerHour: 1000, fits: false });
    expect(check.warning).toMatch(/\(2,000 per sweep, a sweep every 2 hours\) but polling may use 800\/hour/);
  });

  it("suggests hours when auto would poll hourly or slower", () => {
    expect(checkCronCadence({ members: 50_000, expression: "*/15 * * * *", fields: fieldsOf("*/15 * * * *") }).warning).toMatch(/now: every hour\)/);
    expect(checkCronCadence({ members: 200_000, expression: "*/15 * * * *", fields: fieldsOf("*/15 * * * *") }).warning).toMatch(/now: every 3 hours\)/);
  });
});
