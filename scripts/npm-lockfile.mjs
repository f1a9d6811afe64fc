#!/usr/bin/env node
/**
 * The registry packages of package-lock.json, for the offline package builds (packaging/README.md).
 *
 *   node scripts/npm-lockfile.mjs cache-content LOCKFILE FETCHED_CACHE OUT_CACHE
 *     copies, from an npm cache that installed LOCKFILE, each package's tarball (the cache's
 *     content file named by its integrity) into OUT_CACHE, and nothing else; fails if one is missing.
 *   node scripts/npm-lockfile.mjs resolved LOCKFILE
 *     prints LOCKFILE with each registry package's `resolved` URL filled in.
 *
 * Why `resolved`: a lockfile written with omit-lockfile-registry-resolved (as this one is) names
 * packages by version only, and npm then asks the registry where each tarball is, even with
 * --offline (it fails with ENOTCACHED). With the URL and the integrity, npm takes the tarball from
 * the cache by its digest and never asks. The URL is the registry's canonical one, derived from the
 * name and version; it is recorded, never fetched.
 */
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const REGISTRY = 'https://registry.npmjs.org/';

/** Packages of another platform only (`os`/`cpu`) that npm may skip: no package build needs them. */
const platformOnly = (entry) => entry.optional === true && (entry.os !== undefined || entry.cpu !== undefined);

/** [path in node_modules, entry] of every package fetched from the registry. */
function registryPackages(lock) {
  const packages = Object.entries(lock.packages).filter(([path, entry]) => path !== '' && entry.link !== true && entry.inBundle !== true);
  // A package npm would take without a digest to check (a git or tarball-URL dependency, a lockfile
  // without integrity) could be anything in the cache: the offline build refuses it.
  for (const [path, entry] of packages) {
    if (typeof entry.integrity !== 'string' || !/^sha512-/.test(entry.integrity)) {
      throw new Error(
        `${path} has no sha512 integrity in the lockfile: the offline build takes registry packages checked by their digest only`,
      );
    }
    if (entry.resolved !== undefined && !entry.resolved.startsWith(REGISTRY)) {
      throw new Error(`${path} comes from ${entry.resolved}, not the registry: the offline build takes registry packages only`);
    }
  }
  return packages;
}

function packageName(path, entry) {
  return entry.name ?? path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
}

/** Where cacache keeps the content of `integrity` (its strongest hash), relative to the cache. */
function contentPath(integrity) {
  const hashes = integrity.split(/\s+/).map((hash) => /^(sha\d+)-(.+)$/.exec(hash));
  const [, algorithm, digest] = hashes.sort((a, b) => Number(b?.[1].slice(3)) - Number(a?.[1].slice(3)))[0] ?? [];
  if (!algorithm || !digest) throw new Error(`not an integrity: ${integrity}`);
  const hex = Buffer.from(digest, 'base64').toString('hex');
  return join('_cacache', 'content-v2', algorithm, hex.slice(0, 2), hex.slice(2, 4), hex.slice(4));
}

function cacheContent(lock, fetched, out) {
  let copied = 0;
  for (const [path, entry] of registryPackages(lock)) {
    if (platformOnly(entry)) continue;
    const file = contentPath(entry.integrity);
    mkdirSync(dirname(join(out, file)), { recursive: true });
    try {
      copyFileSync(join(fetched, file), join(out, file));
    } catch (error) {
      throw new Error(`${path} (${entry.version}) is not in ${fetched}`, { cause: error });
    }
    copied += 1;
  }
  process.stderr.write(`${copied} packages\n`);
}

function withResolved(lock) {
  for (const [path, entry] of registryPackages(lock)) {
    if (entry.resolved !== undefined) continue;
    const name = packageName(path, entry);
    entry.resolved = `${REGISTRY}${name}/-/${name.split('/').pop()}-${entry.version}.tgz`;
  }
  return lock;
}

const [command, lockfile, ...rest] = process.argv.slice(2);
if (!lockfile) throw new Error('usage: npm-lockfile.mjs cache-content|resolved LOCKFILE …');
const lock = JSON.parse(readFileSync(lockfile, 'utf8'));
if (command === 'cache-content' && rest.length === 2) cacheContent(lock, rest[0], rest[1]);
else if (command === 'resolved') process.stdout.write(`${JSON.stringify(withResolved(lock), null, 2)}\n`);
else throw new Error(`unknown command or arguments: ${process.argv.slice(2).join(' ')}`);
