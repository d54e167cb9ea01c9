// The QC page in headless Chromium with the network blocked: it must open without a request
// leaving the file, without a console error, with every figure drawn (each figure's screenshot
// has more than a handful of colours), and give its numbers for the test to compare with the
// report.
//
//   node qc.mjs /path/to/qc.html   prints one JSON object on standard output
import { launch } from './browser.mjs';
import { pathToFileURL } from 'node:url';

const page_path = process.argv[2];
const browser = await launch();
const watchdog = setTimeout(() => {
  console.error('qc.mjs: no result in 120 s');
  process.exit(3);
}, 120_000);
try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const blocked = [];
  // Everything but the page itself is refused (data: URIs never reach the network).
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('file:') && url.endsWith('/qc.html')) return route.continue();
    blocked.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('requestfailed', (r) => { if (!r.url().startsWith('data:')) errors.push(`request failed: ${r.url()}`); });
  await page.goto(pathToFileURL(page_path).href, { waitUntil: 'load' });

  // Every image decoded.
  const images = await page.evaluate(() => Array.from(document.images).map((i) => ({
    alt: i.alt, ok: i.complete && i.naturalWidth > 0,
  })));

  // A screenshot per figure, its distinct colours counted in the page (a blank or failed
  // figure is one or two colours).
  const figures = [];
  for (const section of await page.locator('section.track').all()) {
    const track = await section.getAttribute('data-track');
    for (const figure of await section.locator('figure').all()) {
      const kind = await figure.getAttribute('data-figure');
      const png = await figure.screenshot();
      const colours = await page.evaluate(async (b64) => {
        const img = new Image();
        img.src = `data:image/png;base64,${b64}`;
        await img.decode();
        const c = document.createElement('canvas');
        c.width = img.width; c.height = img.height;
        const g = c.getContext('2d');
        g.drawImage(img, 0, 0);
        const d = g.getImageData(0, 0, c.width, c.height).data;
        const seen = new Set();
        for (let i = 0; i < d.length; i += 4) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        return { colours: seen.size, width: c.width, height: c.height };
      }, png.toString('base64'));
      figures.push({ track, kind, ...colours });
    }
  }

  // The numbers as printed: [track, rendition or null, key, text].
  const values = await page.evaluate(() => Array.from(document.querySelectorAll('[data-k]')).map((e) => [
    e.closest('section.track')?.getAttribute('data-track') ?? null,
    e.closest('tr[data-rendition]')?.getAttribute('data-rendition') ?? null,
    e.getAttribute('data-k'),
    e.textContent,
  ]));
  const sections = await page.locator('section.track').count();
  console.log(JSON.stringify({ sections, blocked, errors, images, figures, values }));
} finally {
  clearTimeout(watchdog);
  await browser.close();
}
