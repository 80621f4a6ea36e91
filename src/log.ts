/**
 * Structured logs through winston: JSON lines on stderr, with fixed fields (run, attempt, step)
 * on every line. Level from SWARMBENCH_LOG_LEVEL (default info).
 */
import winston from 'winston';

/** What every layer logs through: structured messages with fields. */
export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
}

export function createLogger(fields: Record<string, unknown> = {}, level = process.env.SWARMBENCH_LOG_LEVEL ?? 'info'): Logger & { child(f: Record<string, unknown>): Logger } {
  const base = winston.createLogger({
    level,
    defaultMeta: fields,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Stream({ stream: process.stderr })],
  });
  return wrap(base);
}

function wrap(w: winston.Logger): Logger & { child(f: Record<string, unknown>): Logger } {
  return {
    info: (msg, f) => void w.info(msg, f ?? {}),
    warn: (msg, f) => void w.warn(msg, f ?? {}),
    debug: (msg, f) => void w.debug(msg, f ?? {}),
    child: (f) => wrap(w.child(f)),
  };
}
