#!/usr/bin/env node
// Runs the TypeScript sources through tsx's loader (no build step needed on a fresh machine).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/gateway-probe.ts');
process.exitCode = await main(process.argv.slice(2));
