/**
 * Coverage of `npm test` (test/run.ts): V8 coverage of the whole suite, reported on src/ by c8
 * (.c8rc.json) through the source maps.
 *
 * Every node process of the run writes its raw coverage into coverage/v8 when it exits
 * (NODE_V8_COVERAGE; /run/tessia-coverage in the private system, see boot-inside.sh): the test files (the unit tests run src/ through tsx), the CLI they spawn
 * (dist/), and inside the private systemd the runners under test, the packaged service and the
 * tasks (the echo machine), which see the repository at /run/tessia-app (the package's copy of dist/
 * at /usr/lib/tessia-task-runner). Those paths are mapped back to the repository here, and only the
 * scripts of src/ and dist/ are kept, in coverage/tmp, where c8 reads them.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { APP_DIR_INSIDE, REPO_DIR } from '../src/embedded/private-systemd.js';

const COVERAGE_DIR = join(REPO_DIR, 'coverage');
/** What the processes write (NODE_V8_COVERAGE). */
export const RAW_COVERAGE_DIR = join(COVERAGE_DIR, 'v8');
/** What c8 reads (its tempDirectory in .c8rc.json). */
const KEPT_COVERAGE_DIR = join(COVERAGE_DIR, 'tmp');
/** Where the Debian package installs dist/ (packaging/deb/debian/rules), built from this checkout. */
const PACKAGE_DIR = '/usr/lib/tessia-task-runner';

const REPO_URL = pathToFileURL(REPO_DIR).href;
const ELSEWHERE = [APP_DIR_INSIDE, PACKAGE_DIR].map((directory) => pathToFileURL(directory).href + '/');
const OURS = [`${REPO_URL}/src/`, `${REPO_URL}/dist/`];

/** An empty coverage/v8 that every process may write to (tasks run as dynamic users). */
export function prepareCoverageDir(): string {
  rmSync(COVERAGE_DIR, { recursive: true, force: true });
  mkdirSync(RAW_COVERAGE_DIR, { recursive: true });
  chmodSync(RAW_COVERAGE_DIR, 0o1777);
  return RAW_COVERAGE_DIR;
}

function toRepo(url: string): string {
  const prefix = ELSEWHERE.find((candidate) => url.startsWith(candidate));
  return prefix ? `${REPO_URL}/${url.slice(prefix.length)}` : url;
}

interface ProcessCoverage {
  result: { url: string }[];
  /** Node resolves a map's sources to absolute URLs. */
  'source-map-cache'?: Record<string, { url?: string | null; data?: { sources?: string[] } | null }>;
}

/**
 * coverage/v8 → coverage/tmp: paths mapped back to the repository, only the scripts of src/ and
 * dist/ (a tenth of the size; coverage/v8 is removed then). `unloaded`: the reported sources (src/
 * less src/embedded, as in .c8rc.json) that no process loaded, which c8 would leave out of the
 * report rather than count as uncovered.
 */
export function keepOwnScripts(): { processes: number; kept: number; unloaded: string[] } {
  mkdirSync(KEPT_COVERAGE_DIR, { recursive: true });
  const files = readdirSync(RAW_COVERAGE_DIR).filter((name) => name.endsWith('.json'));
  let kept = 0;
  const loaded = new Set<string>();
  for (const name of files) {
    let coverage: ProcessCoverage;
    try {
      coverage = JSON.parse(readFileSync(join(RAW_COVERAGE_DIR, name), 'utf8')) as ProcessCoverage;
    } catch {
      continue; // a process that died while writing it
    }
    const result = coverage.result
      .map((script) => ({ ...script, url: toRepo(script.url) }))
      .filter((script) => OURS.some((prefix) => script.url.startsWith(prefix)));
    if (result.length === 0) continue;
    const maps: NonNullable<ProcessCoverage['source-map-cache']> = {};
    for (const [url, map] of Object.entries(coverage['source-map-cache'] ?? {})) {
      const script = toRepo(url);
      if (!result.some((entry) => entry.url === script)) continue;
      const sources = map.data?.sources;
      const data = map.data && sources ? { ...map.data, sources: sources.map(toRepo) } : (map.data ?? null);
      maps[script] = { ...map, url: map.url ? toRepo(map.url) : null, data };
    }
    for (const script of result) loaded.add(script.url);
    for (const map of Object.values(maps)) for (const source of map.data?.sources ?? []) loaded.add(source);
    writeFileSync(join(KEPT_COVERAGE_DIR, name), JSON.stringify({ result, 'source-map-cache': maps }));
    kept++;
  }
  rmSync(RAW_COVERAGE_DIR, { recursive: true, force: true });
  const unloaded = readdirSync(join(REPO_DIR, 'src'), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !file.startsWith('embedded/'))
    .filter((file) => !loaded.has(`${REPO_URL}/src/${file}`))
    .map((file) => `src/${file}`)
    .sort();
  return { processes: files.length, kept, unloaded };
}

/** `c8 report` with .c8rc.json: the summary on stdout; per file in coverage/coverage.txt, lcov.info and lcov-report/ (HTML). */
export function reportCoverage(): Promise<number> {
  const c8 = spawn(join(REPO_DIR, 'node_modules/.bin/c8'), ['report'], { cwd: REPO_DIR, stdio: 'inherit' });
  return new Promise((resolve) => c8.once('exit', (code) => resolve(code ?? 1)));
}
