/**
 * Whether the compiled addons fit the Node.js that runs them. The runner ships two: better-sqlite3
 * (the store; required) and unix-dgram (native journal entries; optional). Each is built for one
 * Node.js ABI, its NODE_MODULE_VERSION (process.versions.modules), and another major Node.js
 * refuses to load it: a nodejs upgrade that skipped the package's pin would otherwise end the
 * runner with Node's dlopen error deep in a stack trace, and systemd would restart it in a loop.
 *
 * - build record: dist/build-abi.json, which the build writes (scripts/write-build-abi.mjs): the
 *   ABI and version of the Node.js that built the addons, `{"modules":"115","node":"20.20.2"}`.
 * - mismatch: that ABI is not this Node.js's. `serve` checks the record before anything loads an
 *   addon, and turns an addon's own refusal (a missing or stale record) into the same message.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';

/** An ABI (NODE_MODULE_VERSION) and the Node.js version that has it. */
export interface NodeAbi {
  modules: string;
  node: string;
}

/** Where the build writes its record: beside this module, in dist/. */
export const BUILD_ABI_FILE = fileURLToPath(new URL('./build-abi.json', import.meta.url));

/**
 * The major Node.js of each ABI since 18, for a message when only the ABI is known (an addon's
 * refusal names no version). From Node's doc/abi_version_registry.json; a later ABI reads "the
 * Node.js of ABI N".
 */
const MAJOR_OF_ABI: Readonly<Record<string, string>> = {
  '108': '18',
  '111': '19',
  '115': '20',
  '120': '21',
  '127': '22',
  '131': '23',
  '137': '24',
  '141': '25',
};

/** Addons built for another Node.js than the running one; the message (one line) says which and what to do. */
export class NativeAddonMismatch extends Error {
  override readonly name = 'NativeAddonMismatch';
}

export function runningAbi(): NodeAbi {
  return { modules: process.versions.modules, node: process.versions.node };
}

/** The build record's content, or an Error saying what is wrong with it. */
export function parseBuildAbi(text: string): NodeAbi {
  let record: unknown;
  try {
    record = JSON.parse(text);
  } catch (error) {
    throw new Error(`not JSON: ${(error as Error).message}`, { cause: error });
  }
  const { modules, node } = (record ?? {}) as Partial<Record<string, unknown>>;
  if (typeof modules !== 'string' || !/^\d+$/.test(modules) || typeof node !== 'string' || !/^\d+\.\d+\.\d+/.test(node)) {
    throw new Error('expected {"modules": "<NODE_MODULE_VERSION>", "node": "<x.y.z>"}');
  }
  return { modules, node };
}

/**
 * What to tell the admin when addons built for `built` meet `running`, or null when they fit.
 * `built.node` is absent when only an addon's refusal is known; `addon` names that addon.
 */
export function mismatchMessage(built: { modules: string; node?: string }, running: NodeAbi, addon?: string): string | null {
  if (built.modules === running.modules) return null;
  const builtMajor = built.node?.split('.')[0] ?? MAJOR_OF_ABI[built.modules];
  const builtNode = built.node ?? builtMajor;
  const builtFor = builtNode === undefined ? `the Node.js of ABI ${built.modules}` : `Node.js ${builtNode} (ABI ${built.modules})`;
  const goBack = builtMajor === undefined ? `the Node.js of ABI ${built.modules}` : `Node.js ${builtMajor}`;
  const runningMajor = running.node.split('.')[0] ?? running.node;
  const what = addon === undefined ? 'its native addons were' : `its native addon ${addon} was`;
  return (
    `${what} built for ${builtFor} but this is Node.js ${running.node} (ABI ${running.modules}): ` +
    `install a tessia-task-runner package built for Node.js ${runningMajor} or go back to ${goBack} ` +
    `(the package's nodejs dependency names it); in a source tree, npm rebuild then npm run build`
  );
}

export type BuildAbiCheck = { recorded: true; built: NodeAbi } | { recorded: false; why: string };

/**
 * Compares the build record with the running Node.js. Throws NativeAddonMismatch when they differ;
 * a missing or unreadable record (a tree built before the record existed) is no check, and says why.
 */
export function checkBuildAbi(file = BUILD_ABI_FILE, running = runningAbi()): BuildAbiCheck {
  let built: NodeAbi;
  try {
    built = parseBuildAbi(readFileSync(file, 'utf8'));
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'there is none' : (error as Error).message;
    return { recorded: false, why: `${file}: ${why}` };
  }
  const message = mismatchMessage(built, running);
  if (message !== null) throw new NativeAddonMismatch(message);
  return { recorded: true, built };
}

/**
 * The ABI an addon was built for, from Node's refusal to load it (ERR_DLOPEN_FAILED: "The module
 * '…/x.node' was compiled against a different Node.js version using NODE_MODULE_VERSION 127. This
 * version of Node.js requires NODE_MODULE_VERSION 115."), searched along `cause`; null for any other error.
 */
export function abiOfLoadFailure(error: unknown): { modules: string; addon: string } | null {
  for (let each: unknown = error, depth = 0; each instanceof Error && depth < 8; each = each.cause, depth++) {
    if ((each as NodeJS.ErrnoException).code !== 'ERR_DLOPEN_FAILED') continue;
    const found =
      /^The module '(?<path>[^']*)'\s+was compiled against a different Node\.js version using\s+NODE_MODULE_VERSION (?<modules>\d+)\./.exec(
        each.message,
      );
    if (found?.groups) return { modules: found.groups['modules'] as string, addon: basename(found.groups['path'] as string) };
  }
  return null;
}

/** `error` as a NativeAddonMismatch when it is one, or when an addon refused to load for its ABI; else null. */
export function asNativeAddonMismatch(error: unknown, running = runningAbi()): NativeAddonMismatch | null {
  if (error instanceof NativeAddonMismatch) return error;
  const refused = abiOfLoadFailure(error);
  const message = refused && mismatchMessage({ modules: refused.modules }, running, refused.addon);
  return message ? new NativeAddonMismatch(message, { cause: error }) : null;
}
