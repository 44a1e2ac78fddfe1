#!/usr/bin/env node
// The CLI as bundled by `npm run build` (scripts/bundle.ts: src/cli.ts and what it imports up
// front, in a few files), because loading ~100 separate modules was most of a no-op's time.
import { main } from '../dist/bundle/cli.js';

process.exitCode = await main(process.argv);
