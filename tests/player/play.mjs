// Plays pressed renditions to the end in headless Chromium, with hls.js and with Shaka Player.
//
//   node tests/player/play.mjs <out-folder> <report.json>
//
// MEDIA_BASE=<url> plays the package from that URL instead (a store's HTTP endpoint: the page
// is then cross-origin to the media, as behind a CDN); PLAY_SET=entry plays only the entry
// manifests: every multivariant playlist, and each MPD with one representation per family;
// PLAY_SET=tiers plays every tier manifest through two players each: each multivariant playlist
// through hls.js and Shaka, each MPD set through dash.js (for long real masters).
//
// For every track in the report: every rendition's HLS media playlist through hls.js; every
// tier manifest through two players: each multivariant playlist through hls.js and Shaka
// Player (their own ABR), each MPD through Shaka Player (ABR off, restricted to each
// representation in turn) and dash.js (its own ABR over each codec family's AdaptationSet).
// Playback runs at 16x (PLAY_RATE) and must reach the element's 'ended' with the clock at the presentation's end, so a
// player that stalls before the end of a track fails. A codec the browser cannot
// decode at all (Chromium has no ALAC decoder) is skipped and said so, never counted as played.
// PLAY_KEYS='{"<kid hex>": "<key hex>", ...}' plays protected packages with the W3C ClearKey CDM
// (hls.js through a licence endpoint this server answers, Shaka Player and dash.js with the keys
// given) and plays only the protected tiers; PLAY_LOCKED=1 then plays them with no key, and a
// playback passes when it does not play (no 'ended', no clock past 1 s, within 4 s).
// Prints one JSON line per playback; exits non-zero if any failed.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from './browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const [outDir, reportPath] = process.argv.slice(2);
const report = JSON.parse(fs.readFileSync(reportPath, 'utf8'));

const types = {
  '.m3u8': 'application/vnd.apple.mpegurl', '.mpd': 'application/dash+xml',
  '.mp4': 'audio/mp4', '.m4s': 'audio/mp4', '.js': 'text/javascript', '.html': 'text/html',
};
const libs = {
  '/lib/hls.js': path.join(here, 'node_modules/hls.js/dist/hls.js'),
  '/lib/shaka.js': path.join(here, 'node_modules/shaka-player/dist/shaka-player.compiled.js'),
  '/lib/dash.js': path.join(here, 'node_modules/dashjs/dist/modern/umd/dash.all.min.js'),
};
const keys = process.env.PLAY_KEYS ? JSON.parse(process.env.PLAY_KEYS) : null;
const locked = process.env.PLAY_LOCKED === '1';
const b64url = (hex) => Buffer.from(hex, 'hex').toString('base64url');
const server = http.createServer((req, res) => {
  const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  let file;
  if (url === '/clearkey' && req.method === 'POST') {
    // A W3C ClearKey licence server (EME 9.1.4): the request names key ids, the answer is a
    // JSON Web Key Set of the ones it knows.
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const asked = JSON.parse(Buffer.from(body, 'latin1').toString('utf8')).kids || [];
      const known = Object.fromEntries(Object.entries(keys || {}).map(([k, v]) => [b64url(k), b64url(v)]));
      const answer = { keys: asked.filter((k) => known[k]).map((k) => ({ kty: 'oct', kid: k, k: known[k] })), type: 'temporary' };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer));
    });
    return;
  }
  if (url === '/') {
    res.writeHead(200, { 'content-type': 'text/html' });
    return res.end('<!doctype html><script src="/lib/hls.js"></script><script src="/lib/shaka.js"></script><script src="/lib/dash.js"></script><body></body>');
  } else if (libs[url]) {
    file = libs[url];
  } else if (url.startsWith('/out/')) {
    file = path.join(outDir, path.normalize(url.slice(5)));
  }
  if (!file || !fs.existsSync(file)) { res.writeHead(404); return res.end(); }
  const type = types[path.extname(file)] || 'application/octet-stream';
  // Byte ranges (RFC 9110 14), as a store or a CDN serves them: the single-file form needs them.
  const size = fs.statSync(file).size;
  const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range || '');
  if (range) {
    let [first, last] = [range[1], range[2]];
    if (first === '') [first, last] = [size - Number(last), size - 1];
    else [first, last] = [Number(first), last === '' ? size - 1 : Math.min(Number(last), size - 1)];
    if (first > last || first >= size) {
      res.writeHead(416, { 'content-range': `bytes */${size}` });
      return res.end();
    }
    res.writeHead(206, { 'content-type': type, 'content-range': `bytes ${first}-${last}/${size}`, 'content-length': last - first + 1, 'accept-ranges': 'bytes' });
    return fs.createReadStream(file, { start: first, end: last }).pipe(res);
  }
  res.writeHead(200, { 'content-type': type, 'content-length': size, 'accept-ranges': 'bytes' });
  fs.createReadStream(file).pipe(res);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${server.address().port}`;

const browser = await launch();
const page = await browser.newPage();
page.on('pageerror', (e) => console.error('page error:', e.message));
await page.goto(base + '/');

// In the page: play one source to its end and report the clock.
const playInPage = async ({ kind, url, codecs, bandwidth, ids, end, seekEnd, rate, keys, locked }) => {
  const audio = document.createElement('audio');
  // PLAY_END: start seekEnd seconds before the end (the end of a track, cheaply, many times).
  if (seekEnd > 0) {
    audio.addEventListener('loadedmetadata', () => { audio.currentTime = Math.max(0, end - seekEnd); }, { once: true });
  }
  document.body.appendChild(audio);
  let player;
  const result = await new Promise(async (resolve) => {
    // A failure says where the clock stood and what the element had buffered.
    const fail = (error) => {
      const buffered = [];
      for (let i = 0; i < audio.buffered.length; i++) buffered.push([audio.buffered.start(i), audio.buffered.end(i)]);
      resolve({ ok: false, error, at: audio.currentTime, duration: audio.duration, buffered, readyState: audio.readyState });
    };
    // Locked (protected, no key): not playing for 4 s is the pass (at 16x a playing track
    // would have passed 60 s of audio by then; the fixtures are 6.5 to 10.5 s long).
    // The end of a track alone (PLAY_END) has 10 s beyond its own length to end.
    const limit = locked ? 4000 : seekEnd > 0 ? (seekEnd / rate) * 1000 + 10000 : 60000;
    const timer = setTimeout(() => (locked && audio.currentTime < 1 ? resolve({ ok: true, locked: true, at: audio.currentTime }) : fail('timeout')), limit);
    const ended = () => {
      clearTimeout(timer);
      resolve({ ok: true, currentTime: audio.currentTime, duration: audio.duration });
    };
    audio.addEventListener('ended', () => (locked ? fail('played to the end without a key') : ended()));
    audio.addEventListener('error', () => (locked ? resolve({ ok: true, locked: true, error: 'media error' }) : fail('media error ' + (audio.error && audio.error.message))));
    const b64url = (hex) => btoa(hex.match(/../g).map((h) => String.fromCharCode(parseInt(h, 16))).join('')).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    try {
      if (kind === 'hls' || kind === 'hls-tier') {
        player = new Hls({
          enableWorker: false,
          emeEnabled: !!keys,
          drmSystems: keys ? { 'org.w3.clearkey': { licenseUrl: location.origin + '/clearkey' } } : {},
        });
        player.on(Hls.Events.ERROR, (_, d) => {
          if (d.fatal) (locked ? resolve({ ok: true, locked: true, error: `hls.js ${d.details}` }) : fail(`hls.js ${d.type}: ${d.details}`));
        });
        player.on(Hls.Events.MANIFEST_PARSED, () => {
          audio.playbackRate = rate;
          audio.play().catch((e) => fail('play(): ' + e));
        });
        player.loadSource(url);
        player.attachMedia(audio);
      } else if (kind === 'dashjs') {
        player = dashjs.MediaPlayer().create();
        player.updateSettings({ debug: { logLevel: dashjs.Debug.LOG_LEVEL_NONE } });
        // Only this family's AdaptationSet keeps representations: dash.js plays that set.
        player.registerCustomCapabilitiesFilter((rep) => ids.includes(rep.id));
        if (keys) {
          player.setProtectionData({ 'org.w3.clearkey': { clearkeys: Object.fromEntries(Object.entries(keys).map(([k, v]) => [b64url(k), b64url(v)])) } });
        }
        player.on(dashjs.MediaPlayer.events.ERROR, (e) => (locked ? resolve({ ok: true, locked: true, error: 'dash.js error' }) : fail('dash.js ' + JSON.stringify(e.error && (e.error.message || e.error.code) || e.error))));
        player.on(dashjs.MediaPlayer.events.STREAM_INITIALIZED, () => { audio.playbackRate = rate; });
        // No end but the element's own 'ended': dash.js's 200 ms end check, when it sees the
        // clock past the MPD's end first, seeks back to that end less its seekDurationBackoff
        // (0.5 s) and pauses there; the playback then fails at the clock where it stopped.
        player.initialize(audio, url, true);
      } else if (kind === 'shaka-hls') {
        shaka.polyfill.installAll();
        player = new shaka.Player();
        await player.attach(audio);
        player.addEventListener('error', (e) => (locked ? resolve({ ok: true, locked: true, error: 'shaka ' + e.detail.code }) : fail('shaka ' + e.detail.code)));
        if (keys) player.configure({ drm: { clearKeys: keys } });
        await player.load(url);
        audio.playbackRate = rate;
        await audio.play();
      } else {
        shaka.polyfill.installAll();
        player = new shaka.Player();
        await player.attach(audio);
        player.addEventListener('error', (e) => (locked ? resolve({ ok: true, locked: true, error: 'shaka ' + e.detail.code }) : fail('shaka ' + e.detail.code)));
        if (keys) player.configure({ drm: { clearKeys: keys } });
        player.configure({
          abr: { enabled: false },
          preferredAudio: [{ codec: codecs }],
          restrictions: { minBandwidth: bandwidth, maxBandwidth: bandwidth },
        });
        await player.load(url);
        const active = player.getVariantTracks().find((t) => t.active);
        if (!active || active.bandwidth !== bandwidth || active.audioCodec !== codecs) {
          return fail(`shaka picked ${active && active.audioCodec} ${active && active.bandwidth}`);
        }
        audio.playbackRate = rate;
        await audio.play();
      }
    } catch (e) {
      if (locked) resolve({ ok: true, locked: true, error: String(e && (e.message || e.code) || e) });
      else fail(String(e && (e.message || e.code) || e));
    }
  });
  if (player) await player.destroy();
  audio.remove();
  return result;
};

const playerName = { hls: 'hls.js', 'hls-tier': 'hls.js', 'shaka-hls': 'shaka', dash: 'shaka', dashjs: 'dash.js' };
const media = process.env.MEDIA_BASE ? process.env.MEDIA_BASE.replace(/\/$/, '') : `${base}/out`;
const entryOnly = process.env.PLAY_SET === 'entry';
const tiersOnly = process.env.PLAY_SET === 'tiers';
const jobs = [];
const tierRank = (tier) => ['free', 'premium', 'hifi'].indexOf(tier);
for (const t of report.tracks) {
  // The set policy (manifest::create_entry_manifests): in a tier, a (family, rate) set with a
  // protected member holds its protected members alone.
  const inTierOf = (tier) => {
    const all = t.renditions.filter((r) => tierRank(r.tier) <= tierRank(tier));
    return all.filter((r) => r.key_id || !all.some((o) => o.key_id && o.family === r.family && o.sample_rate === r.sample_rate));
  };
  // With keys: the protected tiers only.
  const wanted = (tier) => !keys || inTierOf(tier).some((r) => r.key_id);
  for (const r of entryOnly || tiersOnly ? [] : t.renditions) {
    if (keys && !r.key_id) continue;
    jobs.push({ kind: 'hls', what: `${t.id}/${r.id} (media playlist)`, url: `${media}/${r.playlist}`, codecs: r.codecs, end: r.duration_samples / r.sample_rate });
  }
  for (const p of t.playlists) {
    if (!wanted(p.tier)) continue;
    const member = inTierOf(p.tier).find((r) => r.family === p.family && r.sample_rate === p.sample_rate);
    jobs.push({ kind: 'hls', what: p.path, url: `${media}/${p.path}`, codecs: member.codecs, end: t.duration_seconds });
    if (!entryOnly) jobs.push({ kind: 'shaka-hls', what: p.path, url: `${media}/${p.path}`, codecs: member.codecs, end: t.duration_seconds });
  }
  // Each tier's Apple-form playlist (AAC, ALAC, FLAC variants in audio groups) through hls.js,
  // its own ABR over the variants this browser decodes.
  for (const p of t.tier_playlists || []) {
    if (entryOnly || !wanted(p.tier)) continue;
    const aac = t.renditions.find((r) => r.family === 'aac');
    jobs.push({ kind: 'hls-tier', what: p.path, url: `${media}/${p.path}`, codecs: aac.codecs, end: t.duration_seconds });
  }
  for (const m of t.mpds) {
    if (!wanted(m.tier)) continue;
    const families = new Set();
    for (const r of tiersOnly ? [] : inTierOf(m.tier)) {
      if (entryOnly && families.has(r.family)) continue;
      families.add(r.family);
      jobs.push({ kind: 'dash', what: `${m.path} ${r.id}`, url: `${media}/${m.path}`, codecs: r.codecs, bandwidth: r.bandwidth, end: t.duration_seconds });
    }
    if (entryOnly) continue;
    const inTier = inTierOf(m.tier);
    for (const set of new Set(inTier.map((r) => `${r.family} ${r.sample_rate}`))) {
      const members = inTier.filter((r) => `${r.family} ${r.sample_rate}` === set);
      jobs.push({ kind: 'dashjs', what: `${m.path} ${set}`, url: `${media}/${m.path}`, codecs: members[0].codecs, ids: members.map((r) => r.id), end: t.duration_seconds });
    }
  }
}

// PLAY_END=<s> starts each playback s seconds before its end; PLAY_REPEAT=<n> plays each n times
// (a stall at the end that comes 1 time in 10 needs many ends, not many whole tracks).
// PLAY_RATE=<r> plays at r instead of 16x (the end of a track at 1x: a race with the
// player's own timers that 16x makes rare).
const seekEnd = Number(process.env.PLAY_END || 0);
const rate = Number(process.env.PLAY_RATE || 16);
for (const j of jobs) Object.assign(j, { seekEnd, rate, keys: locked ? null : keys, locked });
const repeat = Number(process.env.PLAY_REPEAT || 1);
// PLAY_ONLY=<text> plays only the sources whose description contains it (to chase one failure).
if (process.env.PLAY_ONLY) jobs.splice(0, jobs.length, ...jobs.filter((j) => `${playerName[j.kind]} ${j.what}`.includes(process.env.PLAY_ONLY)));
// PLAY_SAMPLE=<n> [PLAY_SEED=<s>] plays ceil(len / n) of each (player, codec) stratum, ordered by
// the FNV-1a hash of the source, n apart (wrapping) from an offset the seed gives: the rule
// of tests/common/mod.rs (Sampling::pick), so the default test command rotates through the
// matrix commit by commit and `scripts/test.sh --full` plays all of it.
const every = Number(process.env.PLAY_SAMPLE || 1);
const matrix = jobs.length;
if (every > 1) {
  const fnv1a = (text) => {
    let h = 0x811c9dc5;
    for (const b of Buffer.from(text, 'utf8')) h = Math.imul(h ^ b, 0x01000193) >>> 0;
    return h;
  };
  const seed = Number(process.env.PLAY_SEED || 0);
  const groups = new Map();
  jobs.forEach((j, i) => {
    const key = `${j.kind} ${j.codecs}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push([fnv1a(`${playerName[j.kind]} ${j.what}`), i]);
  });
  const keep = new Set();
  for (const group of groups.values()) {
    group.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const offset = seed % every;
    for (let k = 0; k < Math.ceil(group.length / every); k++) keep.add(group[(offset + k * every) % group.length][1]);
  }
  jobs.splice(0, jobs.length, ...jobs.filter((_, i) => keep.has(i)));
}
if (repeat > 1) jobs.splice(0, jobs.length, ...jobs.flatMap((j) => Array(repeat).fill(j)));
console.log(JSON.stringify({ matrix, playing: jobs.length, every }));
const codecs = [...new Set(jobs.map((j) => j.codecs))];
const playable = await page.evaluate((list) => Object.fromEntries(
  list.map((c) => [c, MediaSource.isTypeSupported(`audio/mp4; codecs="${c}"`)])), codecs);

let failed = 0;
let skipped = 0;
for (const job of jobs) {
  if (!playable[job.codecs]) {
    skipped++;
    console.log(JSON.stringify({ player: playerName[job.kind], source: job.what, skipped: `this browser cannot decode ${job.codecs}` }));
    continue;
  }
  const res = await page.evaluate(playInPage, job);
  // The clock must reach the end of the presentation (within 100 ms: encoder padding and
  // the player's own trimming differ by a frame or two).
  if (res.ok && Math.abs(res.currentTime - job.end) > 0.1) {
    res.ok = false;
    res.error = `ended at ${res.currentTime.toFixed(3)} s, expected ${job.end.toFixed(3)} s`;
  }
  if (!res.ok) failed++;
  console.log(JSON.stringify({ player: playerName[job.kind], source: job.what, ...res }));
}
await browser.close();
server.close();
console.log(`playback: ${jobs.length - failed - skipped} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed ? 1 : 0);
