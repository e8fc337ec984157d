import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderAllDocs } from './render.js';

/** Writes docs/config/ from the schema, removing pages of settings that no longer exist. */
const dir = process.argv[2] ?? 'docs/config';
mkdirSync(dir, { recursive: true });
const files = renderAllDocs();
for (const name of readdirSync(dir)) if (name.endsWith('.md') && !files.has(name)) rmSync(join(dir, name));
for (const [name, text] of files) writeFileSync(join(dir, name), text);
console.log(`wrote ${files.size} pages to ${dir}`);
