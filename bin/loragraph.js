#!/usr/bin/env node
// `npx loragraph …`: registers tsx so the TypeScript sources run as they are, then hands over to server/cli.ts.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../server/cli.ts');
process.exit(await main(process.argv.slice(2)));
