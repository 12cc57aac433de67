/** Defaults the probe's `--help` shows (no imports: the help loads nothing else). */

/** How long `load` waits for attempts in flight after its duration, at most. */
export const DEFAULT_DRAIN_MS = 10_000;
