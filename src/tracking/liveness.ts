/**
 * Which process owns a run directory, whether it is still alive, and marking a run whose process died without ending
 * it (SIGKILL, power loss) as crashed.
 *
 * `<run dir>/process.json` (rewritten atomically at the start of every training session of the directory):
 *   { pid, host, bootId, startTicks, startedAt, spoolOffset, session }
 * `startTicks` is the process start time from /proc/<pid>/stat (clock ticks since boot) and `bootId` the kernel's boot
 * id: a pid is reused by later processes, the pair (pid, start time) on one boot is not. `spoolOffset` is the size of
 * spool.jsonl when the session started: the session has ended iff the spool holds a run-end record after that offset.
 *
 * Liveness (`processLiveness`): 'alive' when a process with that pid exists and (where /proc tells) started at that
 * time on this boot; 'dead' when it does not; 'unknown' when the record is from another host (nothing can be checked).
 *
 * A session that has not ended and whose process is dead crashed: {@link markCrashedIfDead} appends to the spool the
 * tag `ewtune.stop_reason=crashed` and a FAILED run-end record (end time: the session's last record), so the
 * next push (the resume's, or `ewtune mlflow replay`) moves the MLflow run from RUNNING to FAILED. Idempotent: once
 * the end record is there the session counts as ended.
 */
import { closeSync, existsSync, ftruncateSync, fstatSync, openSync, readFileSync, readSync, renameSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { EwtuneError } from '../errors.ts';
import { SPOOL_FILE, SpoolWriter, readSpool } from './spool.ts';

export const PROCESS_FILE = 'process.json';

/** Who runs (ran) the current session of a run directory. */
export interface ProcessRecord {
  readonly pid: number;
  readonly host: string;
  /** Kernel boot id (Linux), when known. */
  readonly bootId?: string;
  /** Start time of the process in clock ticks since boot (Linux /proc/<pid>/stat field 22), when known. */
  readonly startTicks?: string;
  /** ISO time the session started. */
  readonly startedAt: string;
  /** spool.jsonl size when the session started. */
  readonly spoolOffset: number;
  /** 1 for the first session of the directory, 2 for the first resume, ... */
  readonly session: number;
}

/** Liveness of a recorded process. */
export type Liveness = 'alive' | 'dead' | 'unknown';

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Start time (clock ticks since boot) of process `pid`, from /proc; undefined when /proc cannot tell. */
export function processStartTicks(pid: number): string | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // Fields after the command name (which may contain spaces and parentheses): field 3 (state) onwards.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return rest[22 - 3];
}

function bootId(): string | undefined {
  return readText('/proc/sys/kernel/random/boot_id')?.trim() || undefined;
}

/** The identity of this process (or of `pid` on this host). */
export function processIdentity(pid: number = process.pid): Pick<ProcessRecord, 'pid' | 'host' | 'bootId' | 'startTicks'> {
  return { pid, host: hostname(), bootId: bootId(), startTicks: processStartTicks(pid) };
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

/** Whether the recorded process is still running (see the module comment). */
export function processLiveness(record: Pick<ProcessRecord, 'pid' | 'host' | 'bootId' | 'startTicks'>): Liveness {
  if (record.host !== hostname()) return 'unknown';
  const boot = bootId();
  if (record.bootId !== undefined && boot !== undefined && record.bootId !== boot) return 'dead'; // rebooted since
  if (!Number.isSafeInteger(record.pid) || record.pid <= 0 || !pidExists(record.pid)) return 'dead';
  if (record.startTicks !== undefined) {
    const now = processStartTicks(record.pid);
    if (now !== undefined && now !== record.startTicks) return 'dead'; // the pid now belongs to another process
  }
  return 'alive';
}

/** Read `<dir>/process.json`, or undefined when there is none (or it is unreadable: a torn write of a crashed run). */
export function readProcessRecord(dir: string): ProcessRecord | undefined {
  const text = readText(join(dir, PROCESS_FILE));
  if (text === undefined) return undefined;
  try {
    const r = JSON.parse(text) as ProcessRecord;
    return Number.isSafeInteger(r.pid) && typeof r.host === 'string' && Number.isSafeInteger(r.spoolOffset) ? r : undefined;
  } catch {
    return undefined;
  }
}

/** Record this process as the owner of a new session of `dir` (atomic rewrite), starting at the spool's current end. */
export function writeProcessRecord(dir: string): ProcessRecord {
  const previous = readProcessRecord(dir);
  const session = (Number.isSafeInteger(previous?.session) ? (previous as ProcessRecord).session : 0) + 1;
  const record: ProcessRecord = { ...processIdentity(), startedAt: new Date().toISOString(), spoolOffset: spoolSize(dir), session };
  const path = join(dir, PROCESS_FILE);
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(record)}\n`);
  renameSync(tmp, path);
  return record;
}

function spoolSize(dir: string): number {
  const path = join(dir, SPOOL_FILE);
  if (!existsSync(path)) return 0;
  const fd = openSync(path, 'r');
  try {
    return fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
}

/**
 * Remove a torn last line of spool.jsonl (a crashed writer's record cut short), so that records appended later start
 * on a line of their own. Returns the bytes removed (0 when the spool ends with a newline or does not exist).
 */
export function repairSpoolTail(dir: string): number {
  const path = join(dir, SPOOL_FILE);
  if (!existsSync(path)) return 0;
  const fd = openSync(path, 'r+');
  try {
    const size = fstatSync(fd).size;
    let end = size;
    const buf = Buffer.alloc(4096);
    while (end > 0) {
      const from = Math.max(0, end - buf.length);
      const n = readSync(fd, buf, 0, end - from, from);
      const nl = buf.subarray(0, n).lastIndexOf(10);
      if (nl >= 0) {
        end = from + nl + 1;
        break;
      }
      end = from;
    }
    if (end < size) ftruncateSync(fd, end);
    return size - end;
  } finally {
    closeSync(fd);
  }
}

/** State of the current session of a run directory. */
export type SessionState = 'none' | 'ended' | Liveness;

/** Whether the session recorded in process.json has a run-end record in the spool; and the last timestamp in it. */
function sessionEnd(dir: string, from: number): { ended: boolean; lastTs?: number } {
  let offset = from;
  let lastTs: number | undefined;
  for (;;) {
    const chunk = readSpool(dir, offset);
    for (const { record } of chunk.records) {
      if (record.t === 'e') return { ended: true, lastTs: record.ts };
      if (record.t === 'm') lastTs = Math.max(lastTs ?? 0, record.ts);
    }
    if (chunk.next <= offset) return { ended: false, lastTs };
    offset = chunk.next;
  }
}

/** The state of `dir`'s current session: 'none' (no process record), 'ended', or the liveness of its process. */
export function sessionState(dir: string): { state: SessionState; record?: ProcessRecord } {
  const record = readProcessRecord(dir);
  if (!record) return { state: 'none' };
  if (sessionEnd(dir, record.spoolOffset).ended) return { state: 'ended', record };
  return { state: processLiveness(record), record };
}

/** A run directory still owned by a live process (refused by resume). */
export class RunInUseError extends EwtuneError {
  constructor(dir: string, record: ProcessRecord) {
    super('ERR_RUN_IN_USE', `${dir} is still being trained by process ${record.pid} on ${record.host} (started ${record.startedAt}); stop it first`);
  }
}

/**
 * If `dir`'s session has not ended and its process is dead, append the crash marker (tag `ewtune.stop_reason=crashed`,
 * tag `ewtune.crashed_at`, FAILED run end) to the spool, after removing a torn last line. Returns the session state
 * found and whether the marker was written now.
 */
export function markCrashedIfDead(dir: string): { state: SessionState; crashed: boolean; record?: ProcessRecord } {
  const { state, record } = sessionState(dir);
  if (state !== 'dead' || !record) return { state, crashed: false, record };
  repairSpoolTail(dir);
  const { lastTs } = sessionEnd(dir, record.spoolOffset);
  const writer = new SpoolWriter(dir);
  try {
    writer.append({ t: 'g', k: 'ewtune.stop_reason', v: 'crashed' });
    writer.append({ t: 'g', k: 'ewtune.crashed_at', v: new Date().toISOString() });
    writer.append({ t: 'e', status: 'FAILED', ts: lastTs ?? Date.now() });
  } finally {
    writer.close();
  }
  return { state, crashed: true, record };
}
