#!/usr/bin/env python3
"""Regenerate the committed fixtures under fixtures/ (deterministic audio: the WAV and FLAC
files are the same bytes every run; sox stamps the AIFF's comment chunk with the time).

Signals are music-like (harmonic tones with envelopes, a slow chirp, a little seeded noise) so
encoders behave as on real material, and peak below -1 dBFS. Needs python3 and sox (FLAC/AIFF).

  fixtures/album/     01-cd-stereo.wav  44.1 kHz / 16-bit stereo WAV, 10.5 s (two segments)
                      02-hires.flac     96 kHz / 24-bit stereo FLAC, 6.5 s
                      03-mono.aiff      44.1 kHz / 16-bit mono AIFF, 4 s
                      release.json
  With --metadata-only, only the release.json files are rewritten.

  fixtures/gapless/   01-part-one.flac, 02-part-two.flac: one continuous 48 kHz / 24-bit
                      programme of 12 s cut at frame 250001 (on no codec's frame grid)
                      release.json (gapless: true)
"""
import json
import math
import os
import random
import subprocess
import sys
import tempfile

from wavfile import write_wav

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
GAPLESS_CUT = 250_001


def signal(rate, seconds, channels, seed, base=220.0):
    """Interleaved floats in [-0.85, 0.85]."""
    rng = random.Random(seed)
    n = int(round(rate * seconds))
    out = []
    notes = [base, base * 5 / 4, base * 3 / 2, base * 2]
    for i in range(n):
        t = i / rate
        env = 0.55 + 0.45 * math.sin(2 * math.pi * 0.37 * t)
        note = notes[int(t * 2) % len(notes)]
        chirp = 0.08 * math.sin(2 * math.pi * (300 * t + 400 * t * t / seconds))
        frame = []
        for c in range(channels):
            detune = 1.0 + 0.002 * c
            v = 0.0
            for h, a in ((1, 0.35), (2, 0.15), (3, 0.08), (5, 0.04), (8, 0.02)):
                v += a * math.sin(2 * math.pi * note * detune * h * t + c * 0.3)
            v = v * env + chirp + 0.01 * (rng.random() - 0.5)
            frame.append(max(-0.85, min(0.85, v)))
        out.extend(frame)
    return out


def convert(src, dst, *args):
    subprocess.run(["sox", src, *args, dst], check=True)


def main():
    album = os.path.join(ROOT, "album")
    gapless = os.path.join(ROOT, "gapless")
    os.makedirs(album, exist_ok=True)
    os.makedirs(gapless, exist_ok=True)
    if "--metadata-only" not in sys.argv:
        with tempfile.TemporaryDirectory() as tmp:
            make_audio(album, gapless, tmp)
    write_metadata(album, gapless)
    return 0


def make_audio(album, gapless, tmp):
    write_wav(os.path.join(album, "01-cd-stereo.wav"), signal(44100, 10.5, 2, seed=1),
              rate=44100, channels=2, bits=16)
    hires = os.path.join(tmp, "hires.wav")
    write_wav(hires, signal(96000, 6.5, 2, seed=2, base=330.0), rate=96000, channels=2, bits=24)
    convert(hires, os.path.join(album, "02-hires.flac"))
    mono = os.path.join(tmp, "mono.wav")
    write_wav(mono, signal(44100, 4.0, 1, seed=3, base=196.0), rate=44100, channels=1, bits=16)
    convert(mono, os.path.join(album, "03-mono.aiff"))

    prog = signal(48000, 12.0, 2, seed=4, base=261.63)
    cut = GAPLESS_CUT * 2
    for name, part in (("01-part-one", prog[:cut]), ("02-part-two", prog[cut:])):
        wav = os.path.join(tmp, name + ".wav")
        write_wav(wav, part, rate=48000, channels=2, bits=24)
        convert(wav, os.path.join(gapless, name + ".flac"))


def write_metadata(album, gapless):
    common = {
        "artists": ["The Test Signals"],
        "label": "pressing",
        "release_date": "2026-11-23",
        "territories": "worldwide",
        "excluded_territories": ["AQ"],
        "c_line": "2026 pressing",
        "p_line": "2026 pressing",
    }
    artists = ["The Test Signals"]
    release = {
        "title": "Pressing Fixtures",
        **common,
        "upc": "192026000017",
        "tracks": [
            {"file": "01-cd-stereo.wav", "isrc": "QZ-ES6-26-00001", "title": "CD Stereo",
             "artists": artists, "track_number": 1, "explicit": False},
            {"file": "02-hires.flac", "isrc": "QZ-ES6-26-00002", "title": "Hi-Res",
             "artists": artists, "track_number": 2, "explicit": False},
            {"file": "03-mono.aiff", "isrc": "QZ-ES6-26-00003", "title": "Mono",
             "artists": artists, "track_number": 3, "explicit": False},
        ],
    }
    with open(os.path.join(album, "release.json"), "w") as f:
        json.dump(release, f, indent=2)
        f.write("\n")
    gap = {
        "title": "Continuous Programme",
        **common,
        "upc": "192026000024",
        "gapless": True,
        "tracks": [
            {"file": "01-part-one.flac", "isrc": "QZ-ES6-26-00011", "title": "Part One",
             "artists": artists, "track_number": 1},
            {"file": "02-part-two.flac", "isrc": "QZ-ES6-26-00012", "title": "Part Two",
             "artists": artists, "track_number": 2},
        ],
    }
    with open(os.path.join(gapless, "release.json"), "w") as f:
        json.dump(gap, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
