// The embeddable widget's budget: other sites load it on every page view, so it stays one small file.
// BENCHMARKS.md ("The widget's size") reports the figure.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';

const BUDGET_GZIP_BYTES = 15 * 1024;

test('widget.js stays under its 15 KB gzipped budget and needs nothing else', () => {
  const source = readFileSync(new URL('../../web-widget/widget.js', import.meta.url));
  const gzipped = gzipSync(source, { level: 9 }).length;
  console.log(`widget.js: ${source.length} bytes, ${gzipped} gzipped (budget ${BUDGET_GZIP_BYTES})`);
  assert.ok(gzipped < BUDGET_GZIP_BYTES, `${gzipped} bytes gzipped`);
  assert.doesNotMatch(source.toString(), /^\s*import\s/m, 'the widget is one file: no module imports');
});
