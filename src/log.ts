/**
 * Structured logging (pino). One logger per process; components take a child logger with `component`.
 * Secrets are never passed to the logger; `redact` is a second line of defence for key-like fields.
 */
import { pino, destination, stdTimeFunctions, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export interface LogOptions {
  level?: LevelWithSilent;
  /** Write to stderr instead of stdout (CLIs whose stdout carries a report). */
  stderr?: boolean;
}

export function createLogger(opts: LogOptions = {}): Logger {
  return pino(
    {
      level: opts.level ?? (process.env.LPGW_LOG_LEVEL as LevelWithSilent | undefined) ?? 'info',
      base: { pid: process.pid },
      redact: { paths: ['*.secretKey', '*.privateKey', '*.psk', 'secretKey', 'privateKey', 'psk'], censor: '[redacted]' },
      timestamp: stdTimeFunctions.isoTime,
    },
    destination({ fd: opts.stderr ? 2 : 1, sync: true }),
  );
}

/** A logger that drops everything (tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
