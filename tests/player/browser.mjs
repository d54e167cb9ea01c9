// Headless Chromium as the player tests start it (Debian's chromium, or $CHROMIUM): no
// sandbox, GPU, background networking, component updates or sync; autoplay allowed, muted.
import { chromium } from 'playwright-core';

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run',
      '--autoplay-policy=no-user-gesture-required', '--mute-audio'],
  });
}
