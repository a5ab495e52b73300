import { chmod } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

/** The scripts an operator runs, built one file each (the demo stays a tsx script). */
export const BUNDLED_SCRIPTS = ['host-shutdown', 'vm-export', 'vm-import', 'vm-migrate'] as const

const SCRIPTS_DIR = fileURLToPath(new URL('..', import.meta.url))

/** Where `npm run build` puts the built scripts. */
export const DIST_DIR = join(SCRIPTS_DIR, 'dist')

/*
 * Run through tsx, a script loads ~200 modules through tsx's loader thread before it does
 * anything: 0.4 s on a small host, more right after boot when tsx's transform cache in /tmp is
 * gone. Built, it is one file that Node loads in 0.1 s, which matters to a shutdown hook with a
 * deadline and to a batch tool that other tools call VM by VM.
 *
 * Native addons stay outside (they are loaded from node_modules); everything else, our packages
 * included, is inside. The shebang passes the flag that `.npmrc` gives npm-started processes
 * (see its comment): a built script runs as `scripts/dist/<name>.mjs …`, without npm.
 */
const BANNER = [
  '#!/usr/bin/env -S node --max-semi-space-size=1',
  "import { createRequire as __createRequire } from 'node:module';",
  'const require = __createRequire(import.meta.url);',
].join('\n')

/** Builds `scripts/<name>.ts` into `<outdir>/<name>.mjs` (executable) for each bundled script. */
export async function bundleScripts(outdir: string = DIST_DIR): Promise<string[]> {
  await build({
    entryPoints: BUNDLED_SCRIPTS.map((name) => join(SCRIPTS_DIR, `${name}.ts`)),
    outdir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['@node-rs/xxhash', 'zstd-napi'],
    banner: { js: BANNER },
    sourcemap: 'linked',
    logLevel: 'warning',
  })
  const files = BUNDLED_SCRIPTS.map((name) => join(outdir, `${name}.mjs`))
  await Promise.all(files.map((file) => chmod(file, 0o755)))
  return files
}
