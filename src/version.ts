/**
 * The release this code is: package.json's version, the one place it is written (the packages and
 * the CLI read it from there). Read at run time: the file sits beside dist/ in a checkout and in
 * the packages (/usr/lib/tessia-task-runner/package.json).
 */
import { readFileSync } from 'node:fs';

export const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
