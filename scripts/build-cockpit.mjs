// The Cockpit page's files besides its compiled modules (tsc -p src/cockpit): its HTML, manifest and
// styles, and the part of PatternFly 4 it uses (the version Cockpit 287's own pages are built with),
// into dist/cockpit/ — what the cockpit-tessia-task-runner package installs as
// /usr/share/cockpit/tessia-task-runner/. PatternFly's fonts are Cockpit's own (../../static/fonts);
// its icon font and images are not used.
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const out = 'dist/cockpit';
const source = 'src/cockpit';
const patternfly = dirname(createRequire(import.meta.url).resolve('@patternfly/patternfly/package.json'));
/** The PatternFly parts the page's markup uses (class names pf-c-*, pf-l-*). */
const PARTS = [
  'patternfly-base.css',
  'components/Alert/alert.css',
  'components/Backdrop/backdrop.css',
  'components/Button/button.css',
  'components/DescriptionList/description-list.css',
  'components/Form/form.css',
  'components/FormControl/form-control.css',
  'components/Label/label.css',
  'components/ModalBox/modal-box.css',
  'components/Table/table.css',
  'components/Table/table-grid.css',
  'components/Title/title.css',
  'components/Toolbar/toolbar.css',
  'layouts/Bullseye/bullseye.css',
];
const FONTS = [
  ['RedHatText', 'Regular', 400],
  ['RedHatText', 'Medium', 500],
  ['RedHatText', 'Bold', 700],
  ['RedHatDisplay', 'Regular', 400],
  ['RedHatDisplay', 'Medium', 500],
  ['RedHatDisplay', 'Bold', 700],
  ['RedHatMono', 'Regular', 400],
];

// Only what this build makes: a module renamed or removed since must not linger.
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const file of ['index.html', 'manifest.json', 'tasks.css']) copyFileSync(join(source, file), join(out, file));
const fonts = FONTS.map(
  ([family, style, weight]) =>
    `@font-face { font-family: "${family}"; src: url("../../static/fonts/${family}-${style}.woff2") format("woff2"); font-weight: ${weight}; font-style: normal; font-display: fallback; }`,
).join('\n');
const parts = PARTS.map((part) =>
  readFileSync(join(patternfly, part), 'utf8')
    // PatternFly's own @font-face rules point into its package; Cockpit serves the same families.
    .replace(/@font-face\s*\{[^}]*\}/g, '')
    .replace(/url\("\.\.\/\.\.\/assets\/[^"]*"\)/g, 'none')
    .replace(/\/\*# sourceMappingURL=.*\*\//g, ''),
);
const { version } = JSON.parse(readFileSync(join(patternfly, 'package.json'), 'utf8'));
// The npm package carries no licence file: its licence (package.json: MIT), as the project states it.
const LICENSE = `PatternFly ${version} (https://www.patternfly.org), the parts the page uses: ${PARTS.join(', ')}.

MIT License

Copyright (c) Red Hat, Inc.

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the "Software"), to deal in the Software without restriction,
including without limitation the rights to use, copy, modify, merge, publish, distribute,
sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT
NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT
OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.`;
writeFileSync(join(out, 'patternfly.css'), `/*! ${LICENSE} */\n${fonts}\n${parts.join('\n')}`);
