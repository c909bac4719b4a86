// The process's resident memory as the benchmarks measure it (Linux /proc; elsewhere the current RSS).
import { readFileSync, writeFileSync } from 'node:fs';

/** Peak resident memory of this process since start or the last resetPeak (VmHWM), in bytes. */
export const peakRss = () => {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
};

/**
 * Linux: writing 5 to clear_refs resets VmHWM to the current RSS, so a step's peak leaves out what
 * loading held for a moment (a graph's serialized bytes, weights on their way to ORT).
 */
export const resetPeak = () => { try { writeFileSync('/proc/self/clear_refs', '5'); return true; } catch { return false; } };

export const rssNow = () => process.memoryUsage().rss;
