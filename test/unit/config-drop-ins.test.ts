import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { mergeSources } from '../../src/config/drop-ins.js';

const root = mkdtempSync(join(tmpdir(), 'tessia-config-d-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** A config directory with these files (relative names: config.yaml, config.d/NAME.yaml), and its main file. */
function configDirectory(files: Record<string, string>): string {
  const directory = mkdtempSync(join(root, 'etc-'));
  mkdirSync(join(directory, 'config.d'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(directory, name), text);
  return join(directory, 'config.yaml');
}

describe('merging config sources', () => {
  it('merges mappings key by key at every depth, and replaces values and lists whole, later over earlier', () => {
    const { document, sourceOf } = mergeSources([
      {
        source: 'main',
        document: { listen: '127.0.0.1:1', allowedHosts: ['a', 'b'], machines: { echo: { builtin: 'echo', limits: { tasksMax: 5 } } } },
      },
      {
        source: 'one',
        document: { allowedHosts: ['c'], machines: { echo: { limits: { memoryMax: '1G' } }, tool: { exec: ['/bin/true'] } } },
      },
      { source: 'two', document: { machines: { tool: { exec: ['/bin/false'] } } } },
    ]);
    assert.deepEqual(document, {
      listen: '127.0.0.1:1',
      allowedHosts: ['c'],
      machines: { echo: { builtin: 'echo', limits: { tasksMax: 5, memoryMax: '1G' } }, tool: { exec: ['/bin/false'] } },
    });
    assert.equal(sourceOf(['listen']), 'main');
    assert.equal(sourceOf(['allowedHosts', 0]), 'one');
    assert.equal(sourceOf(['machines', 'echo', 'limits', 'tasksMax']), 'main');
    assert.equal(sourceOf(['machines', 'echo', 'limits', 'memoryMax']), 'one');
    assert.equal(sourceOf(['machines', 'tool', 'exec', 0]), 'two');
  });

  it('forgets who set the keys under a mapping a later source replaced with a value', () => {
    const { document, sourceOf } = mergeSources([
      { source: 'main', document: { logs: { heartbeatSec: 3 } } },
      { source: 'one', document: { logs: null } },
    ]);
    assert.deepEqual(document, { logs: null });
    assert.equal(sourceOf(['logs', 'heartbeatSec']), 'one');
  });
});

describe('config.d beside the config file', () => {
  it("adds a machine from a drop-in, in the order of the files' names, the command line over all", async () => {
    const path = configDirectory({
      'config.yaml': 'listen: 127.0.0.1:7000\nmachines:\n  echo:\n    builtin: echo\n',
      'config.d/50-tool.yaml': 'machines:\n  tool:\n    exec: [/usr/bin/tool]\n    limits: { tasksMax: 7 }\n',
      'config.d/90-site.yaml': 'machines:\n  tool:\n    limits: { tasksMax: 9 }\nlisten: 127.0.0.1:7001\n',
      'config.d/10-first.yaml': 'machines:\n  tool:\n    limits: { tasksMax: 1, maxActive: 2 }\n',
      'config.d/README': 'not yaml: [',
      'config.d/.hidden.yaml': 'not yaml: [',
      'config.d/old.yaml.dpkg-old': 'not yaml: [',
    });
    const config = await loadConfig(path, { listen: '127.0.0.1:7002' });
    assert.deepEqual(Object.keys(config.machines).sort(), ['echo', 'tool']);
    const tool = config.machines['tool'];
    assert.ok(tool);
    assert.equal(tool.limits.tasksMax, 9);
    assert.equal(tool.limits.maxActive, 2);
    assert.equal(config.listen, '127.0.0.1:7002');
    assert.equal((await loadConfig(path)).listen, '127.0.0.1:7001');
  });

  it('names the drop-in and the key of an error, also for an unknown key', async () => {
    const path = configDirectory({
      'config.yaml': 'machines:\n  echo:\n    builtin: echo\n',
      'config.d/50-powerman.yaml': 'machines:\n  powerman:\n    tessia:\n      class: not-a-class\n',
      'config.d/60-typo.yaml': 'machines:\n  echo:\n    limits:\n      memory: 1G\n',
    });
    const error = await loadConfig(path).then(
      () => assert.fail('accepted'),
      (caught: unknown) => caught,
    );
    assert.ok(error instanceof ConfigError);
    const directory = join(path, '..', 'config.d');
    assert.match(error.message, new RegExp(`with 2 drop-in\\(s\\) of ${directory.replaceAll('/', '\\/')} is invalid`));
    assert.ok(
      error.message.includes(`  machines.powerman.tessia.class: must be module.path:ClassName (in ${join(directory, '50-powerman.yaml')})`),
      error.message,
    );
    assert.ok(
      error.message.includes(`  machines.echo.limits: unknown key(s) "memory" (in ${join(directory, '60-typo.yaml')})`),
      error.message,
    );
  });

  it('refuses a key named __proto__ by its file, and leaves the prototype of every object alone', async () => {
    const path = configDirectory({
      'config.yaml': 'machines:\n  echo:\n    builtin: echo\n',
      'config.d/50-proto.yaml': '__proto__:\n  polluted: yes\nmachines:\n  __proto__:\n    polluted: yes\n',
    });
    const error = await loadConfig(path).then(
      () => assert.fail('accepted'),
      (caught: unknown) => caught,
    );
    assert.ok(error instanceof ConfigError);
    assert.match(error.message, /unknown key\(s\) "__proto__" \(in .*50-proto\.yaml\)/);
    assert.equal((Object.prototype as Record<string, unknown>)['polluted'], undefined);
    // The same config without it loads: nothing of the refused one stayed behind.
    writeFileSync(join(path, '..', 'config.d/50-proto.yaml'), 'machines: {}\n');
    assert.ok((await loadConfig(path)).machines['echo']);
  });

  it('names a drop-in that is not YAML, or not a mapping', async () => {
    const notYaml = configDirectory({ 'config.yaml': 'listen: 127.0.0.1:7000\n', 'config.d/50-broken.yaml': 'machines: [\n' });
    await assert.rejects(loadConfig(notYaml), (error: Error) =>
      error.message.startsWith(`${join(notYaml, '..', 'config.d', '50-broken.yaml')} is not valid YAML`),
    );
    const list = configDirectory({ 'config.yaml': '', 'config.d/50-list.yaml': '- a\n- b\n' });
    await assert.rejects(loadConfig(list), (error: Error) =>
      error.message.includes('50-list.yaml is invalid:\n  (top level): expected a mapping of keys'),
    );
  });

  it('takes an empty drop-in, and a config without config.d, as they are', async () => {
    const path = configDirectory({ 'config.yaml': 'listen: 127.0.0.1:7000\n', 'config.d/50-empty.yaml': '' });
    assert.equal((await loadConfig(path)).listen, '127.0.0.1:7000');
    const alone = join(mkdtempSync(join(root, 'alone-')), 'config.yaml');
    writeFileSync(alone, 'listen: 127.0.0.1:7003\n');
    assert.equal((await loadConfig(alone)).listen, '127.0.0.1:7003');
  });
});
