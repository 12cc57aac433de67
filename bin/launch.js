// Starts one of the package's programs from dist/ (compiled by `npm ci` through the `prepare` script, or by
// `npm run build`). In a development checkout where dist/ is missing or older than the sources, it runs the
// TypeScript sources through tsx instead (a development dependency): the same code, but each start compiles
// it (≈ 0.7 s more); on a terminal it says so. LP_GATEWAY_FROM_SOURCE=1 always runs the sources (tsx),
// LP_GATEWAY_FROM_SOURCE=0 always dist/ (an error if dist/ is missing).
import { fileURLToPath } from 'node:url';
import { distStale } from './dist-state.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

export async function launch(program) {
  const argv = process.argv.slice(2);
  const force = process.env.LP_GATEWAY_FROM_SOURCE;
  const why = force === '1' ? 'LP_GATEWAY_FROM_SOURCE=1' : force === '0' ? null : distStale(ROOT);
  if (why === null) {
    const { main } = await import(new URL(`../dist/src/cli/${program}.js`, import.meta.url).href);
    process.exitCode = await main(argv);
    return;
  }
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    process.stderr.write(`${program}: ${why}, and tsx (a development dependency) is not installed to run the TypeScript sources instead: run \`npm ci\` or \`npm run build\` in ${ROOT}\n`);
    process.exitCode = 1;
    return;
  }
  if (force !== '1' && process.stderr.isTTY) process.stderr.write(`${program}: ${why}; running the TypeScript sources through tsx (slower start)\n`);
  register();
  const { main } = await import(new URL(`../src/cli/${program}.ts`, import.meta.url).href);
  process.exitCode = await main(argv);
}
