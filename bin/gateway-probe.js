#!/usr/bin/env node
// Runs the compiled JavaScript in dist/ (built by `npm ci`); see ./launch.js for a checkout without it.
import { launch } from './launch.js';

await launch('gateway-probe');
