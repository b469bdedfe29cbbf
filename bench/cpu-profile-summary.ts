// Reads V8 .cpuprofile files (node --cpu-prof) and prints where the time went, per bench phase: self
// time by function and by source file or package, and total (inclusive) time of our own functions.
// For `bench:workload -- --cpu-prof DIR`, which profiles the agent. Deliberately small: for call
// trees, open the file in Chrome DevTools or speedscope.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { functionName: string; url: string; lineNumber: number };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  /** Microseconds on the monotonic clock (the one process.hrtime reads). */
  readonly startTime: number;
  readonly samples: readonly number[];
  /** Microseconds since the previous sample. */
  readonly timeDeltas: readonly number[];
}

/** A span of the bench, in monotonic microseconds (process.hrtime.bigint() / 1000). */
export interface ProfilePhase {
  readonly name: string;
  readonly startUs: number;
  readonly endUs: number;
}

const TOP_SELF = 20;
const TOP_FILES = 12;
const TOP_OWN_TOTAL = 15;
/** Waiting in the event loop; '(program)' (native work V8 cannot attribute) and GC count as busy. */
const IDLE = new Set(['(idle)']);

/** Now on the clock V8's profiler stamps samples with. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** Where a frame lives: the npm package, our own file under dist/, or a V8/Node category. */
function placeOf(url: string): string {
  if (url === '') return '(native/V8)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return url;
  const own = /\/dist\/(.*)$/.exec(url);
  return own ? own[1]! : url;
}

/**
 * The layer a self-time sample belongs to, for comparing a Node proxy with the floor by layer. Native
 * stream writes (writev, writeLatin1String…) are counted apart: on a TLS socket they include the
 * encryption and the write syscall, which V8 cannot see into.
 */
function categoryOf(node: ProfileNode): string {
  const { functionName, url } = node.callFrame;
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(program)') return '(program)';
  if (NATIVE_WRITES.has(functionName)) return 'native stream writes (TLS + syscall)';
  if (url === '') return 'other native';
  if (url.includes('/undici/')) return 'undici';
  if (url.startsWith('wasm:')) return 'llhttp (wasm)';
  if (/^node:_http_(server|incoming|outgoing|common)$/.test(url)) return 'node:http';
  if (/^node:(_tls|tls)/.test(url)) return 'TLS (JS)';
  if (/^node:internal\/(streams|stream_base)/.test(url)) return 'streams';
  if (url === 'node:events') return 'events';
  if (/^node:(internal\/)?timers$/.test(url)) return 'timers';
  if (url === 'node:internal/process/task_queues') return 'nextTick/microtasks';
  if (/\/dist\/src\//.test(url)) return 'our own code';
  if (/\/dist\/bench\//.test(url)) return 'bench code';
  if (url.startsWith('node:')) return 'node (other)';
  return 'other packages';
}

const NATIVE_WRITES = new Set([
  'writev',
  'writeLatin1String',
  'writeUtf8String',
  'writeBuffer',
  'writeAsciiString',
]);

function frameKey(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  return `${functionName || '(anonymous)'}  ${placeOf(url)}:${lineNumber + 1}`;
}

export function summarizeCpuProfiles(
  dir: string,
  phases: readonly ProfilePhase[],
  log: (line: string) => void,
): void {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  } catch {
    // No directory: the agent never started, so there is nothing to summarise.
    files = [];
  }
  if (files.length === 0) {
    log(`cpu profile: none written in ${dir}`);
    return;
  }
  for (const file of files) {
    const profile = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as CpuProfile;
    log('');
    log(`cpu profile of the agent: ${path.join(dir, file)}`);
    const whole = { name: 'whole run', startUs: Number.NEGATIVE_INFINITY, endUs: Number.POSITIVE_INFINITY };
    for (const phase of [...phases, whole]) summarizePhase(profile, phase, log);
  }
}

function summarizePhase(profile: CpuProfile, phase: ProfilePhase, log: (line: string) => void): void {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const self = new Map<string, number>();
  const places = new Map<string, number>();
  const categories = new Map<string, number>();
  const ownTotal = new Map<string, number>();
  let sampledUs = 0;
  let busyUs = 0;
  let atUs = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    atUs += delta;
    if (atUs < phase.startUs || atUs > phase.endUs) return;
    const node = byId.get(id)!;
    sampledUs += delta;
    if (IDLE.has(node.callFrame.functionName)) return;
    busyUs += delta;
    const key = frameKey(node);
    self.set(key, (self.get(key) ?? 0) + delta);
    const place = placeOf(node.callFrame.url);
    places.set(place, (places.get(place) ?? 0) + delta);
    const category = categoryOf(node);
    categories.set(category, (categories.get(category) ?? 0) + delta);
    // Total time: each of our own functions on the stack once per sample.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
      const frame = byId.get(at)!;
      if (!/\/dist\/src\//.test(frame.callFrame.url)) continue;
      const ownKey = frameKey(frame);
      if (seen.has(ownKey)) continue;
      seen.add(ownKey);
      ownTotal.set(ownKey, (ownTotal.get(ownKey) ?? 0) + delta);
    }
  });
  if (sampledUs === 0) return;
  log('');
  log(
    `== ${phase.name}: ${(sampledUs / 1000).toFixed(0)} ms sampled, ${(busyUs / 1000).toFixed(0)} ms busy (${((100 * busyUs) / sampledUs).toFixed(0)}%)`,
  );
  const show = (title: string, map: Map<string, number>, top: number) => {
    log(title);
    for (const [name, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      log(
        `  ${(us / 1000).toFixed(0).padStart(7)} ms  ${((100 * us) / busyUs).toFixed(1).padStart(5)}%  ${name}`,
      );
    }
  };
  show('self time by function (% of busy):', self, TOP_SELF);
  show('self time by file or package:', places, TOP_FILES);
  show('self time by layer:', categories, categories.size);
  show('total time of our own functions:', ownTotal, TOP_OWN_TOTAL);
}
