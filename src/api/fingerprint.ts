/**
 * The fingerprint of a result (`ResultDocument.fingerprint`): what the figures of a run depend on
 * besides the system under test, so that two results are compared only when they were measured
 * alike. src/report/fingerprint.ts builds it (`fingerprintOf`) from what the document holds and
 * says which differences matter (`fingerprintDiff`); docs/report.md describes every field.
 *
 * Bounded, whatever a document claims: strings at most 256 characters, at most 64 nodes of at
 * most 32 steps and 8 labels each, at most 8 images and 64 sizes. A document over these bounds is
 * invalid (the builder cuts, it never writes one). The field is optional: documents written
 * before it existed stay valid, and their fingerprint is computed from their environment.
 */
import { z } from 'zod';

/** Longest string a fingerprint holds (the builder cuts longer ones). */
export const FINGERPRINT_MAX_STRING = 256;
export const FINGERPRINT_MAX_NODES = 64;
export const FINGERPRINT_MAX_STEPS = 32;
export const FINGERPRINT_MAX_IMAGES = 8;
export const FINGERPRINT_MAX_SIZES = 64;

/**
 * The node labels that matter (and the only ones a fingerprint keeps): the machine type, the
 * architecture, the GPU model and count, and the CUDA driver's major version (the GPU feature
 * discovery's older and newer names).
 */
export const FINGERPRINT_LABELS = [
  'node.kubernetes.io/instance-type',
  'kubernetes.io/arch',
  'nvidia.com/gpu.product',
  'nvidia.com/gpu.count',
  'nvidia.com/cuda.driver.major',
  'nvidia.com/cuda.driver-version.major',
] as const;

const text = z.string().max(FINGERPRINT_MAX_STRING);
const count = z.number().int().min(0);

/** One machine that ran steps: a Kubernetes node (a runner's), or locally the host. */
export const FingerprintNode = z.object({
  /** The node's name (locally the hostname); recorded, never compared. */
  name: text,
  /** The steps that ran there (absent locally: every step). */
  steps: z.array(text).max(FINGERPRINT_MAX_STEPS).optional(),
  cpus: count.optional(),
  cpuModel: text.optional(),
  /** CPUs the runner could really use (CPU affinity and cgroup quota), where known. */
  effectiveCpus: z.number().min(0).optional(),
  memoryBytes: z.number().min(0).optional(),
  /** The runner's cgroup memory limit, where one was set. */
  memoryLimitBytes: z.number().min(0).optional(),
  /** Node.js version, OS and kernel release, architecture as the runner saw them. */
  node: text.optional(),
  os: text.optional(),
  arch: text.optional(),
  /** The labels of FINGERPRINT_LABELS the node has, where the caller knew them (absent: unknown). */
  labels: z.partialRecord(z.enum(FINGERPRINT_LABELS), text).optional(),
});
export type FingerprintNode = z.infer<typeof FingerprintNode>;

export const Fingerprint = z.object({
  /**
   * 16 hex digits: the start of the SHA-256 of the canonical JSON of the parts that matter (the
   * normalised values `fingerprintDiff` compares; no names, no times). Equal ids: results
   * measured alike.
   */
  id: z.string().regex(/^[0-9a-f]{16}$/, 'must be 16 hexadecimal digits'),
  swarmbenchVersion: text,
  platform: z.enum(['local', 'kubernetes']),
  /** Node.js version of the run (locally) or of most runners (in a cluster). */
  node: text.optional(),
  /** OS and kernel release (`linux 6.8.0-45-generic`). */
  os: text.optional(),
  arch: text.optional(),
  cpuModel: text.optional(),
  cpus: count.optional(),
  effectiveCpus: z.number().min(0).optional(),
  memoryBytes: z.number().min(0).optional(),
  /** The inference backend the GPU step used, where it ran. */
  inference: z.object({ backend: text, gpuInUse: z.boolean() }).optional(),
  /** What ran as the agents (recorded, not compared: it is the system under test). */
  agents: z.object({ kind: text, images: z.array(z.object({ image: text, digest: text.optional() })).max(FINGERPRINT_MAX_IMAGES) }),
  /** The machines that ran the steps (at most 64), and how many there were in all. */
  nodes: z.array(FingerprintNode).max(FINGERPRINT_MAX_NODES),
  nodeCount: count,
  /**
   * The workload: the mode, and where the run's parameters were known (results written with a
   * fingerprint), the sizes the figures depend on (`agents.poolSize`, `stress.sustainedMs`...;
   * not the targets, the trials or the agents' image and defects) and the SHA-256 of their
   * canonical JSON.
   */
  spec: z.object({
    mode: z.enum(['quick', 'full']),
    hash: z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 in hexadecimal').optional(),
    sizes: z
      .record(z.string().max(64), z.union([z.number(), text]))
      .refine((r) => Object.keys(r).length <= FINGERPRINT_MAX_SIZES, `must hold at most ${FINGERPRINT_MAX_SIZES} sizes`)
      .optional(),
  }),
});
export type Fingerprint = z.infer<typeof Fingerprint>;
