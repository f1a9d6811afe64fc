/**
 * What the runner may ask the privileged starter, and what it answers: one JSON document per line,
 * in both directions, over a Unix stream socket only root and the runner's group can open.
 *
 * Three requests: "start task T of machine M with these parameters", "check these parameters
 * for machine M" (the machine's check, in a unit of its own), and "stop, kill (SIGKILL) or reset
 * task T's unit". The starter builds each unit itself from its own (root-owned) config; nothing in a
 * request becomes a unit property but the task id (its unit name, checked against the task pattern)
 * and the parameters (the process's stdin). The unit actions are those polkit's rule lets the
 * runner's user do itself (units/60-tessia-task-runner.rules), for task units only; done by the
 * starter, as root, they cost systemd no polkit check (docs/benchmarks.md, TESSIA_BENCH=polkit).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Config } from '../config/schema.js';
import { TASK_ID_PATTERN } from '../tasks/unit-names.js';

/** A request line beyond the parameters' own limit: the envelope around them. */
export const ENVELOPE_BYTES = 1024;

const envelope = {
  id: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  /**
   * The digest of the unit settings the runner checked this request against (settingsDigest): the
   * starter runs it only with the same settings, read from its own copy of the config.
   */
  settings: z.string().regex(/^[0-9a-f]{64}$/),
  machine: z.string().min(1).max(64),
  parameters: z.unknown(),
};

const taskId = z.string().regex(TASK_ID_PATTERN, 'must be 8 hex digits');

/** What the runner may have the starter do to a task's unit: StopUnit, KillUnit with SIGKILL to all its processes, ResetFailedUnit. */
export const UNIT_ACTIONS = ['stop', 'kill', 'reset-failed'] as const;
export type UnitAction = (typeof UNIT_ACTIONS)[number];

export const StarterRequestSchema = z.union([
  // Without `op`: a start, as runners before checks existed sent it.
  z.strictObject({ ...envelope, op: z.literal('start').default('start'), taskId }),
  z.strictObject({ ...envelope, op: z.literal('check') }),
  z.strictObject({ id: envelope.id, op: z.literal('unit'), action: z.enum(UNIT_ACTIONS), taskId }),
]);
export type StarterRequest = z.infer<typeof StarterRequestSchema>;

const VerdictSchema = z.discriminatedUnion('outcome', [
  z.strictObject({ outcome: z.literal('valid') }),
  z.strictObject({ outcome: z.enum(['invalid', 'broken', 'timeout']), reason: z.string().max(2048) }),
]);

/** Refusals of the starter itself; systemd's own errors keep their D-Bus names. */
export const STARTER_ERRORS = {
  invalidRequest: 'tessia.Starter.InvalidRequest',
  unknownMachine: 'tessia.Starter.UnknownMachine',
  tooLarge: 'tessia.Starter.ParametersTooLarge',
  busy: 'tessia.Starter.Busy',
  shuttingDown: 'tessia.Starter.ShuttingDown',
  rootUser: 'tessia.Starter.RootUser',
  configMismatch: 'tessia.Starter.ConfigMismatch',
} as const;

/**
 * `result`: systemd's start job result ("done", "failed", …) of a start; `verdict`: a check's; `done`:
 * systemd took a unit action; `error`: a refusal, or systemd's error by its D-Bus name.
 */
export const StarterReplySchema = z.union([
  z.strictObject({ id: z.number(), result: z.string() }),
  z.strictObject({ id: z.number(), verdict: VerdictSchema }),
  z.strictObject({ id: z.number(), done: z.literal(true) }),
  z.strictObject({ id: z.number(), error: z.strictObject({ name: z.string(), message: z.string() }) }),
]);
export type StarterReply = z.infer<typeof StarterReplySchema>;

/**
 * What a task unit is built from in a config (its machines, the slice, the parameters limit), as a
 * digest: the runner and the starter read the same file, and agree on which version they use.
 */
export function settingsDigest(config: Config): string {
  const used = { machines: config.machines, slice: config.tasks.slice, maxParameterBytes: config.limits.maxParameterBytes };
  return createHash('sha256').update(JSON.stringify(used)).digest('hex');
}
