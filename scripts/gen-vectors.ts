/** Regenerates test/vectors/lp-gateway-kat.json (run after an intentional wire change; review the diff). */
import { writeFileSync } from 'node:fs';
import { defaultSuite } from '../src/core/index.js';
import { buildVectors } from '../test/helpers/lp-vectors.js';

const out = new URL('../test/vectors/lp-gateway-kat.json', import.meta.url);
writeFileSync(out, `${JSON.stringify(buildVectors(defaultSuite), null, 1)}\n`);
process.stdout.write(`wrote ${out.pathname}\n`);
