// Records which Node.js the build ran on, as dist/build-abi.json: the compiled addons in
// node_modules (better-sqlite3, unix-dgram) were built by the same `npm ci` for that Node.js's ABI
// (NODE_MODULE_VERSION). `tessia-task-runner serve` compares it with the Node.js it runs on before
// loading an addon (src/native-abi.ts); the packages pin their nodejs dependency to it.
import { mkdirSync, writeFileSync } from 'node:fs';

const record = { modules: process.versions.modules, node: process.version.replace(/^v/, '') };
mkdirSync('dist', { recursive: true });
writeFileSync('dist/build-abi.json', `${JSON.stringify(record)}\n`);
