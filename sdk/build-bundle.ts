// Builds the device SDK for browsers (and React Native's Metro, which reads the same ESM): one
// ES module, `clinic-bridge-device.js`, with libthemis.wasm beside it, where wasm-themis' loader
// looks for it by default (beside the page). `npm run sdk:bundle [out-dir]` writes them;
// test/integration/device-sdk-browser.test.ts builds, inspects and runs the same bundle.
//
// wasm-themis names fs, path, crypto and ws (its Emscripten loader) and util (a TextEncoder for
// runtimes without one) inside branches that run only on Node; in a browser they are dead code,
// so they resolve to an empty module instead of imports a browser cannot satisfy or a bundled
// polyfill of util. Nothing else may reach for a Node built-in: the
// build fails if anything does.
import { copyFile, mkdir } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rolldown } from 'rolldown';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const SDK_BUNDLE_FILE = 'clinic-bridge-device.js';
const EMPTY = '\0clinic-bridge:node-only';
const LOADER_NODE_ONLY = new Set(['fs', 'path', 'crypto', 'ws', 'util']);
const BUILTINS = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

export interface SdkBundle {
  readonly dir: string;
  readonly file: string;
  readonly code: string;
  /** Every module the bundle was built from, relative to the repository root. */
  readonly modules: readonly string[];
}

export async function buildSdkBundle(
  outDir: string,
  /** The entry module (default: the SDK's index); the bundle test builds a deliberately bad one too. */
  input = join(ROOT, 'sdk', 'index.ts'),
): Promise<SdkBundle> {
  const refused: string[] = [];
  const build = await rolldown({
    input,
    platform: 'browser',
    cwd: ROOT,
    logLevel: 'silent',
    plugins: [
      {
        name: 'clinic-bridge-browser-only',
        resolveId(source, importer) {
          if (LOADER_NODE_ONLY.has(source) && importer?.includes('/node_modules/wasm-themis/')) return EMPTY;
          if (BUILTINS.has(source)) refused.push(`${source} (imported by ${importer ?? '?'})`);
          return null;
        },
        load(id) {
          return id === EMPTY ? 'export default {};' : null;
        },
      },
    ],
  });
  try {
    if (refused.length > 0) throw new Error(`the device SDK reaches Node built-ins: ${refused.join(', ')}`);
    await mkdir(outDir, { recursive: true });
    const { output } = await build.write({
      dir: outDir,
      format: 'esm',
      entryFileNames: SDK_BUNDLE_FILE,
      codeSplitting: false,
    });
    const entry = output.find((chunk) => chunk.type === 'chunk' && chunk.fileName === SDK_BUNDLE_FILE);
    if (!entry || entry.type !== 'chunk') throw new Error('the bundle has no entry chunk');
    // Built-ins the bundler keeps as imports without asking the plugin (node:…) land here.
    const external = [...entry.imports, ...entry.dynamicImports].filter((name) => BUILTINS.has(name));
    if (external.length > 0) throw new Error(`the device SDK reaches Node built-ins: ${external.join(', ')}`);
    await copyFile(
      join(ROOT, 'node_modules', 'wasm-themis', 'dist-es6', 'libthemis.wasm'),
      join(outDir, 'libthemis.wasm'),
    );
    return {
      dir: outDir,
      file: join(outDir, SDK_BUNDLE_FILE),
      code: entry.code,
      modules: entry.moduleIds.filter((id) => !id.startsWith('\0')).map((id) => id.slice(ROOT.length + 1)),
    };
  } finally {
    await build.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const bundle = await buildSdkBundle(resolve(process.argv[2] ?? 'dist/sdk'));
  console.log(`${bundle.file} (${Math.round(bundle.code.length / 1024)} KiB) and libthemis.wasm`);
}
