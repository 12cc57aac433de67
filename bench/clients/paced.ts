/**
 * The load clients' loop: `workers` loops until the deadline, each awaiting `step(k)` before its next. With a rate,
 * the workers together start at most that many steps per second (each its share, on absolute deadlines, spread
 * over one period), so a server's CPU per packet can be compared at one packet rate (it falls as the rate rises:
 * more datagrams per wake-up). Returns the elapsed seconds.
 */
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runPaced(workers: number, durationMs: number, ratePerSec: number, step: (k: number) => Promise<void>): Promise<number> {
  /** Each worker's interval between step starts (ms), 0 for no pacing. */
  const periodMs = ratePerSec > 0 ? (workers * 1000) / ratePerSec : 0;
  const start = performance.now();
  const deadline = start + durationMs;
  await Promise.all(
    Array.from({ length: workers }, async (_, k) => {
      let next = start + (periodMs * k) / workers;
      while (performance.now() < deadline) {
        if (periodMs > 0) {
          const now = performance.now();
          if (next > now) await sleep(next - now);
          next += periodMs;
        }
        await step(k);
      }
    }),
  );
  return (performance.now() - start) / 1000;
}
