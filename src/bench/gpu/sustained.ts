/**
 * 2.5 Sustained throughput: back-to-back predictions at the largest batch, split into windows of
 * about half a second; a least-squares line of throughput against time over every window, and its
 * fitted end / start ratio with a 95 % confidence interval (docs/gpu.md has the rule).
 *
 * Which throughput is fitted: on a GPU, samples per wall-clock second (the device does the work).
 * On a CPU backend (wasm, cpu, TensorFlow on the CPU) every prediction is CPU work of this
 * process, so the judged figure is samples per second of the process's CPU time: a neighbour that
 * takes the CPU on a shared host slows the wall clock, not the backend, and must not read as
 * decay. The wall-clock figures and the process's CPU share per window are in the details either
 * way.
 */
import type { Measurement } from '../../api/schema.ts';
import { SUSTAINED_MAX_SPAN } from '../../plan/deadlines.ts';
import { describe, median, round } from '../../stats.ts';
import { checkAbort, durationSince, failed, skipped } from '../measure.ts';
import { finite, gpuMeasured, timedPredict, verify, type GpuSession } from './session.ts';
import { fitTrend, type TrendFit } from './trend.ts';
import { MIN_SAMPLES } from './batch.ts';

/** Window length aimed at; a window also holds at least 5 predictions. */
export const WINDOW_MS = 500;
/** Fewest windows a trend is fitted over (3 degrees of freedom for its interval). */
export const MIN_WINDOWS = 5;
/** An inconclusive fit is extended up to this many times the planned duration (plan/deadlines.ts holds it, for the step's deadline). */
export const MAX_SPAN = SUSTAINED_MAX_SPAN;

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * The host's own speed, apart from any inference backend: a fixed plain-JavaScript computation
 * (409,600 float64 multiply-adds over an 8 KiB array, about 0.8 ms here) timed three times at the
 * start of every window, the fastest kept, on the judged clock. A host that slows (CPU frequency,
 * a busy sibling hyperthread, memory pressure) slows it too; a backend that decays does not.
 */
const REF_N = 1024;
const REF_ROUNDS = 400;
const refData = Float64Array.from({ length: REF_N }, (_, i) => ((i * 7919) % 1000) / 1000);

function hostReference(clock: 'cpu' | 'wall'): number {
  let best = Number.POSITIVE_INFINITY;
  for (let k = 0; k < 3; k++) {
    const t = performance.now();
    const c = cpuMs();
    let acc = 0;
    for (let r = 0; r < REF_ROUNDS; r++) for (let i = 0; i < REF_N; i++) acc = acc * 0.999 + refData[i]! * refData[(i + r) & (REF_N - 1)]!;
    if (!(acc > 0)) throw new Error('the host reference computed nothing');
    best = Math.min(best, clock === 'cpu' ? cpuMs() - c : performance.now() - t);
  }
  // Million multiply-adds per millisecond of the clock.
  return (REF_N * REF_ROUNDS) / 1e6 / Math.max(best, 1e-3);
}

function fitSummary(f: TrendFit): Record<string, unknown> {
  return {
    ratio: finite(f.ratio),
    ratioCi95: f.ratioCi.map((v) => finite(v)),
    slopePerSec: finite(f.slope),
    slopeCi95: f.slopeCi.map((v) => finite(v)),
    startFit: finite(f.startFit),
    endFit: finite(f.endFit),
    residualCv: f.meanY > 0 ? finite(f.residualSd / f.meanY) : null,
  };
}

export async function sustained(s: GpuSession): Promise<Measurement> {
  const started = performance.now();
  const { ctx } = s;
  const target = ctx.params.targets.sustainedThroughputRatio;
  const batch = s.sizes[s.sizes.length - 1]!;
  const totalMs = Math.max(0.001, ctx.params.gpu.sustainedSeconds) * 1000;
  const clock: 'cpu' | 'wall' = s.service.backend.gpuInUse ? 'wall' : 'cpu';
  // Latency of one prediction (warm-up, not counted), so that a window holds several of them.
  const probeLat: number[] = [];
  for (let i = 0; i < 3; i++) probeLat.push(await timedPredict(s, s.service, batch));
  const windowMs = Math.max(WINDOW_MS, 5 * median(probeLat));
  const planned = Math.floor(totalMs / windowMs);
  if (planned < MIN_WINDOWS) {
    return skipped(
      '2.5',
      `one prediction at batch ${batch} takes ${round(median(probeLat), 1)} ms: ${ctx.params.gpu.sustainedSeconds} s hold ${planned} windows of ${round(windowMs / 1000, 2)} s, and a trend needs at least ${MIN_WINDOWS} (a longer run, full mode, or a smaller model)`,
      { ...s.base, batch, windowSeconds: round(windowMs / 1000, 3), windows: planned },
      durationSince(started),
    );
  }
  // One untimed window first, so the first window is not a cold start (of the host reference too).
  for (let i = 0; i < 5; i++) hostReference(clock);
  const warmEnd = performance.now() + windowMs;
  while (performance.now() < warmEnd) {
    checkAbort(ctx.signal);
    verify(s, s.service.backend, await s.service.predict(s.inputs, batch), batch);
  }

  const samples: number[] = [];
  const cpu: number[] = [];
  const host: number[] = [];
  const latencies: number[] = [];
  const t0 = performance.now();
  let lastReport = t0;
  /** Predicts until `windows` windows from t0 are full, spreading each prediction over the windows it overlapped. */
  const runUntil = async (windows: number): Promise<void> => {
    while (samples.length < windows) {
      samples.push(0);
      cpu.push(0);
    }
    const end = t0 + windows * windowMs;
    for (;;) {
      checkAbort(ctx.signal);
      if (performance.now() >= end) break;
      // The host reference, once at the start of each window.
      while (host.length < windows && performance.now() - t0 >= host.length * windowMs) host.push(hostReference(clock));
      const t = performance.now();
      if (t >= end) break;
      const c0 = cpuMs();
      const out = await s.service.predict(s.inputs, batch);
      const done = performance.now();
      const c = cpuMs() - c0;
      verify(s, s.service.backend, out, batch);
      latencies.push(done - t);
      // A prediction that straddles a boundary counts in both windows, pro rata.
      const a = t - t0;
      const b = done - t0;
      for (let w = Math.floor(a / windowMs); w < windows && w * windowMs < b; w++) {
        const share = (Math.min(b, (w + 1) * windowMs) - Math.max(a, w * windowMs)) / (b - a);
        if (share > 0) {
          samples[w]! += batch * share;
          cpu[w]! += c * share;
        }
      }
      if (done - lastReport > 1000) {
        ctx.progress('gpu/sustained', `${Math.round((done - t0) / 1000)}/${Math.round((end - t0) / 1000)} s`);
        lastReport = done;
      }
    }
  };

  const judge = (): {
    fit: TrendFit;
    wallFit: TrendFit;
    cpuFit: TrendFit | null;
    hostFit: TrendFit | null;
    wall: number[];
    perCpu: number[];
    xs: number[];
  } => {
    const xs = samples.map((_, w) => ((w + 0.5) * windowMs) / 1000);
    const hostFit = host.length === samples.length ? fitTrend(xs, host) : null;
    const wall = samples.map((n) => n / (windowMs / 1000));
    const perCpu = samples.map((n, w) => (cpu[w]! > 0 ? n / (cpu[w]! / 1000) : 0));
    const wallFit = fitTrend(xs, wall);
    const cpuOk = perCpu.every((v) => v > 0);
    const cpuFit = cpuOk ? fitTrend(xs, perCpu) : null;
    return { fit: clock === 'cpu' && cpuFit ? cpuFit : wallFit, wallFit, cpuFit, hostFit, wall, perCpu, xs };
  };
  const inconclusive = (f: TrendFit): boolean => f.ratio < target && !(f.ratioCi[1] < target);
  /** A decay beyond the target that the host's own slowdown accounts for: the backend's ratio over the host's still meets it. */
  const hostBound = (f: TrendFit, h: TrendFit | null): boolean => h !== null && f.ratio < target && h.ratio > 0 && f.ratio / h.ratio >= target;

  await runUntil(planned);
  let j = judge();
  // A fitted ratio below the target whose interval still reaches it: sample as long again, up to
  // MAX_SPAN times the planned run, refitting over every window each time.
  let span = 1;
  while (inconclusive(j.fit) && span < MAX_SPAN) {
    span++;
    await runUntil(planned * span);
    j = judge();
  }
  const judgedClock = clock === 'cpu' && j.cpuFit ? 'cpu' : 'wall';
  const raw = judgedClock === 'cpu' ? j.perCpu : j.wall;
  const lat = describe(latencies);
  const details = {
    ...s.base,
    batch,
    windows: samples.length,
    windowSeconds: round(windowMs / 1000, 3),
    warmUpWindows: 1,
    plannedWindows: planned,
    extensions: span - 1,
    predictions: latencies.length,
    clock: judgedClock,
    ...(clock === 'cpu' && judgedClock === 'wall' ? { clockNote: 'a window without CPU time recorded: the wall clock is judged' } : {}),
    target,
    fit: fitSummary(j.fit),
    wallFit: fitSummary(j.wallFit),
    hostFit: j.hostFit ? fitSummary(j.hostFit) : null,
    windowHostMegaOpsPerMs: host.map((v) => round(v, 3)),
    windowSamplesPerSec: j.wall.map((v) => round(v, 1)),
    windowSamplesPerCpuSec: j.perCpu.map((v) => round(v, 1)),
    cpuSharePerWindow: cpu.map((c) => round(c / windowMs, 3)),
    minWindowRatio: round(Math.min(...raw) / median(raw), 3),
    latencyP50Ms: round(lat.p50, 3),
    latencyP95Ms: lat.n >= MIN_SAMPLES.p95 ? round(lat.p95, 3) : null,
    latencyMaxMs: round(lat.max, 3),
    statistic: `fitted ${judgedClock === 'cpu' ? 'samples per CPU-second' : 'samples/s'} at the last window's centre / at the first's, least squares over all ${samples.length} windows; raw samples are the windows`,
    rule: `fitted ratio >= target: judged on it (passes); below the target: Skipped as host-bound when the ratio over the host reference's own fitted ratio meets the target; else, with its 95% interval entirely below the target, judged on it (fails); with an interval reaching the target, sampled as long again, up to ${MAX_SPAN} x the planned run, then Skipped as inconclusive if still so`,
  };
  if (!Number.isFinite(j.fit.ratio)) {
    return failed('2.5', `the fitted throughput at the start is not positive (${round(j.fit.startFit, 1)})`, details, durationSince(started));
  }
  if (hostBound(j.fit, j.hostFit)) {
    return skipped(
      '2.5',
      `host-bound: fitted end/start ratio ${round(j.fit.ratio, 3)} over ${samples.length} windows, but a fixed plain-JavaScript computation slowed to ${round(j.hostFit!.ratio, 3)} of its start in the same windows: the host slowed, and the backend's own ratio (${round(j.fit.ratio / j.hostFit!.ratio, 3)}) meets the target ${target}`,
      details,
      durationSince(started),
    );
  }
  if (inconclusive(j.fit)) {
    const [lo, hi] = j.fit.ratioCi;
    return skipped(
      '2.5',
      `inconclusive: fitted end/start ratio ${round(j.fit.ratio, 3)}, 95% interval [${finite(lo)}, ${finite(hi)}] over ${samples.length} windows reaches the target ${target}: the windows vary by ${j.fit.meanY > 0 ? round((100 * j.fit.residualSd) / j.fit.meanY, 1) : '?'}% (residual CV), too much to tell a decay from noise`,
      details,
      durationSince(started),
    );
  }
  return gpuMeasured('2.5', raw, j.fit.ratio, 'windows', details, started);
}
