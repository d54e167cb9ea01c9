// Offline listening of a protected track with Shaka Player's offline storage in headless
// Chromium: store a protected MPD (ClearKey), cut the network, play the stored copy to its end.
//
//   node tests/player/offline.mjs <out-folder> <mpd path in it> <keys json> <duration s>
//
// Chromium's built-in ClearKey CDM has temporary sessions only, so Shaka stores the media
// without a persistent licence (offline.usePersistentLicense = false) and the player is given
// the keys again at playback; with Widevine or PlayReady the same call stores their licence.
// Prints one JSON line; exits non-zero unless the stored track played to its end offline and
// nothing reached the network once it was cut.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from './browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const [outDir, mpd, keysJson, durationText] = process.argv.slice(2);
const keys = JSON.parse(keysJson);
const duration = Number(durationText);
const shakaJs = path.join(here, 'node_modules/shaka-player/dist/shaka-player.compiled.js');
const types = { '.mpd': 'application/dash+xml', '.mp4': 'audio/mp4', '.m4s': 'audio/mp4' };
const server = http.createServer((req, res) => {
  const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  if (url === '/') {
    res.writeHead(200, { 'content-type': 'text/html' });
    return res.end('<!doctype html><script src="/shaka.js"></script><body></body>');
  }
  const file = url === '/shaka.js' ? shakaJs : path.join(outDir, path.normalize(url.slice(1)));
  if (!fs.existsSync(file) || fs.statSync(file).isDirectory()) { res.writeHead(404); return res.end(); }
  res.writeHead(200, { 'content-type': types[path.extname(file)] || 'text/javascript' });
  fs.createReadStream(file).pipe(res);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
// Whatever hangs (a store that never settles, a connection held open), the test ends.
setTimeout(() => {
  console.log(JSON.stringify({ ok: false, error: 'offline.mjs: no result within 180 s' }));
  process.exit(1);
}, 180000).unref();
const base = `http://127.0.0.1:${server.address().port}`;
const browser = await launch();
const context = await browser.newContext();
const page = await context.newPage();
page.on('pageerror', (e) => console.error('page error:', e.message));
await page.goto(base + '/');

const stored = await page.evaluate(async ({ url, keys }) => {
  shaka.polyfill.installAll();
  if (!shaka.offline.Storage.support()) return { ok: false, error: 'no offline storage' };
  const storage = new shaka.offline.Storage();
  storage.configure({ drm: { clearKeys: keys }, offline: { usePersistentLicense: false } });
  try {
    const content = await storage.store(url).promise;
    const list = await storage.list();
    await storage.destroy();
    return { ok: true, offlineUri: content.offlineUri, size: content.size, stored: list.length };
  } catch (e) {
    return { ok: false, error: 'store: ' + (e.code || e.message || e) };
  }
}, { url: `${base}/${mpd}`, keys });
if (!stored.ok) {
  console.log(JSON.stringify(stored));
  process.exit(1);
}

// Cut the network: the server stops, and the browser is offline; count what still tries.
let attempts = 0;
await context.route('**', (route) => { attempts++; route.abort(); });
await context.setOffline(true);
// close() waits for every connection to end: the browser keeps its own open.
server.closeAllConnections();
await new Promise((r) => server.close(r));

const played = await page.evaluate(async ({ offlineUri, keys }) => {
  const audio = document.createElement('audio');
  document.body.appendChild(audio);
  const player = new shaka.Player();
  await player.attach(audio);
  player.configure({ drm: { clearKeys: keys } });
  return await new Promise(async (resolve) => {
    const timer = setTimeout(() => resolve({ ok: false, error: 'timeout', at: audio.currentTime }), 60000);
    audio.addEventListener('ended', () => { clearTimeout(timer); resolve({ ok: true, currentTime: audio.currentTime }); });
    player.addEventListener('error', (e) => resolve({ ok: false, error: 'shaka ' + e.detail.code }));
    try {
      await player.load(offlineUri);
      audio.playbackRate = 16;
      await audio.play();
    } catch (e) {
      resolve({ ok: false, error: 'load: ' + (e.code || e.message || e) });
    }
  });
}, { offlineUri: stored.offlineUri, keys });
await browser.close();
const ok = played.ok && Math.abs(played.currentTime - duration) <= 0.1 && attempts === 0;
console.log(JSON.stringify({ ...stored, ...played, networkAttempts: attempts, ok }));
process.exit(ok ? 0 : 1);
