// Run by @seq-test/core's prepack/postpack: the packed core lists every platform helper package as an
// optional dependency of exactly its own version (npm installs the one whose os/cpu match). They are not
// in the checkout's package.json because the helper packages are not workspaces (npm refuses to install a
// workspace whose cpu is not this machine's) and are not on the registry for `npm ci` to find.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const corePath = join(root, 'packages', 'core', 'package.json');
const helpersDir = join(root, 'packages', 'helpers');
const core = JSON.parse(readFileSync(corePath, 'utf8'));
const mode = process.argv[2];
if (mode === 'add') {
  const optional = {};
  for (const dir of readdirSync(helpersDir).sort()) {
    const helper = JSON.parse(readFileSync(join(helpersDir, dir, 'package.json'), 'utf8'));
    optional[helper.name] = core.version;
  }
  core.optionalDependencies = optional;
} else if (mode === 'remove') {
  delete core.optionalDependencies;
} else {
  console.error('usage: node scripts/pack-manifest.mjs add|remove');
  process.exit(2);
}
writeFileSync(corePath, `${JSON.stringify(core, null, 2)}\n`);
