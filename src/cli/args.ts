/** Shared CLI helpers: typed usage errors (exit 2) and flag parsing that names the flag in every message. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './command.ts';
import { InvalidArgumentError } from '../errors.ts';
import { assertAccountantName } from '../accounting/factory.ts';
import type { AccountantName } from '../accounting/types.ts';

export { UsageError, type CliCommand, type CliIo } from './command.ts';

/** What {@link parseFlags} returns for an option table `T` (named so the declaration files can spell it). */
export type ParsedFlags<T extends NonNullable<ParseArgsConfig['options']>> = ReturnType<typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: boolean }>>;

/** parseArgs in strict mode; unknown flags and missing values become UsageError. */
export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, allowPositionals = false): ParsedFlags<T> {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Parse a numeric flag; throws InvalidArgumentError naming the flag. */
export function numberFlag(flag: string, raw: string | undefined, required: true): number;
export function numberFlag(flag: string, raw: string | undefined, required: false): number | undefined;
export function numberFlag(flag: string, raw: string | undefined, required: boolean): number | undefined {
  if (raw === undefined) {
    if (required) throw new UsageError(`${flag} is required`);
    return undefined;
  }
  const value = raw.trim() === '' ? Number.NaN : Number(raw);
  if (!Number.isFinite(value)) throw new InvalidArgumentError(flag, raw, 'a finite number');
  return value;
}

/** Parse --accountant (optionally allowing 'all'). */
export function accountantFlag(raw: string | undefined, fallback: AccountantName, allowAll: boolean): AccountantName | 'all' {
  if (raw === undefined) return fallback;
  if (allowAll && raw === 'all') return 'all';
  try {
    assertAccountantName(raw, '--accountant');
  } catch {
    throw new InvalidArgumentError('--accountant', raw, `one of edgeworth, rdp, pld, gdp${allowAll ? ', all' : ''}`);
  }
  return raw;
}

/** Parse --tracking-uri (an http(s):// URL; absent → undefined). */
export function trackingUriFlag(raw: string | undefined): string | undefined {
  if (raw !== undefined && !/^https?:\/\//.test(raw)) throw new InvalidArgumentError('--tracking-uri', raw, 'an http(s):// URL');
  return raw;
}

/** Parse --order (1 or 2). */
export function orderFlag(raw: string | undefined): 1 | 2 | undefined {
  if (raw === undefined) return undefined;
  if (raw === '1') return 1;
  if (raw === '2') return 2;
  throw new InvalidArgumentError('--order', raw, '1 or 2');
}

/** Render rows as an aligned text table. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Format a number for tables (null/∞ readable). */
export function fmt(value: number | null | undefined, digits = 6): string {
  if (value === null || value === undefined) return '-';
  if (!Number.isFinite(value)) return String(value);
  return Number(value.toPrecision(digits)).toString();
}
