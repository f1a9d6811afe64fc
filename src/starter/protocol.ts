/**
 * What the runner may ask the privileged starter, and what it answers: one JSON document per line,
 * in both directions, over a Unix stream socket only root and the runner's group can open.
 *
 * The only request is "start task T of machine M with these parameters". The starter builds the
 * unit itself from its own (root-owned) config; nothing in a request becomes a unit property but
 * the task id (its unit name, checked against the task pattern) and the parameters (the task's stdin).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Config } from '../config/schema.js';
import { TASK_ID_PATTERN } from '../tasks/unit-names.js';

/** A request line beyond the parameters' own limit: the envelope around them. */
export const ENVELOPE_BYTES = 1024;

export const StartRequestSchema = z.strictObject({
  id: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  /**
   * The digest of the unit settings the runner checked this start against (settingsDigest): the
   * starter starts it only with the same settings, read from its own copy of the config.
   */
  settings: z.string().regex(/^[0-9a-f]{64}$/),
  taskId: z.string().regex(TASK_ID_PATTERN, 'must be 8 hex digits'),
  machine: z.string().min(1).max(64),
  parameters: z.unknown(),
});
export type StartRequest = z.infer<typeof StartRequestSchema>;

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

/** `result`: systemd's start job result ("done", "failed", …). */
export type StartReply = { id: number; result: string } | { id: number; error: { name: string; message: string } };

export function isStartReply(value: unknown): value is StartReply {
  if (typeof value !== 'object' || value === null) return false;
  const reply = value as Record<string, unknown>;
  if (typeof reply['id'] !== 'number') return false;
  if (typeof reply['result'] === 'string') return true;
  const error = reply['error'] as Record<string, unknown> | undefined;
  return typeof error === 'object' && typeof error['name'] === 'string' && typeof error['message'] === 'string';
}

/**
 * What a task unit is built from in a config (its machines, the slice, the parameters limit), as a
 * digest: the runner and the starter read the same file, and agree on which version they use.
 */
export function settingsDigest(config: Config): string {
  const used = { machines: config.machines, slice: config.tasks.slice, maxParameterBytes: config.limits.maxParameterBytes };
  return createHash('sha256').update(JSON.stringify(used)).digest('hex');
}
