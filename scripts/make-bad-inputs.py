#!/usr/bin/env python3
"""Generate the corpus of bad inputs that ingest must refuse (or warn about) precisely.

  scripts/make-bad-inputs.py OUT_DIR

Writes one sub-folder per case under OUT_DIR and OUT_DIR/expected.json:
  { "<case>": {"codes": ["<finding code>", ...], "exit": 65 or 0}, ... }
Every listed code must be among the findings `pressing validate --json <case dir>` reports.
Needs python3, sox and ffmpeg (scripts/setup.sh installs them).
"""
import json
import math
import os
import shutil
import struct
import subprocess
import sys

from wavfile import write_wav

RATE = 44100


def tone(seconds, rate=RATE, channels=2, amp=0.4, offset=0.0, freq=440.0):
    n = int(seconds * rate)
    out = []
    for i in range(n):
        v = amp * math.sin(2 * math.pi * freq * i / rate) + offset
        out.extend([v] * channels)
    return out


def sox(*args):
    subprocess.run(["sox", *args], check=True)


def release(folder, tracks, **overrides):
    doc = {
        "title": "Bad Inputs",
        "artists": ["Tester"],
        "label": "pressing",
        "upc": "192026000017",
        "release_date": "2026-11-23",
        "territories": "worldwide",
        "c_line": "2026 pressing",
        "p_line": "2026 pressing",
        "tracks": tracks,
    }
    doc.update(overrides)
    with open(os.path.join(folder, "release.json"), "w") as f:
        json.dump(doc, f, indent=2)


def track(file, n, isrc=None):
    return {"file": file, "isrc": isrc or f"QZ-ES6-26-{n:05d}", "title": f"Track {n}",
            "artists": ["Tester"], "track_number": n}


def main(out):
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    expected = {}

    def case(name, codes, exit_code=65):
        d = os.path.join(out, name)
        os.makedirs(d)
        expected[name] = {"codes": codes, "exit": exit_code}
        return d

    good = os.path.join(out, "good.wav")
    write_wav(good, tone(4.0))
    good_bytes = open(good, "rb").read()

    d = case("truncated", ["master.truncated"])
    open(os.path.join(d, "a.wav"), "wb").write(good_bytes[: len(good_bytes) // 2])

    d = case("huge-declared-size", ["master.truncated"])
    b = bytearray(good_bytes)
    data = b.index(b"data")
    struct.pack_into("<I", b, data + 4, 0x7FFFFFF0)
    struct.pack_into("<I", b, 4, 0x7FFFFFF0 + data)
    open(os.path.join(d, "a.wav"), "wb").write(b)

    d = case("streaming-header", ["master.streaming-header"], exit_code=0)
    b = bytearray(good_bytes)
    struct.pack_into("<I", b, data + 4, 0xFFFFFFFF)
    struct.pack_into("<I", b, 4, 0xFFFFFFFF)
    open(os.path.join(d, "a.wav"), "wb").write(b)

    # 100 samples (2 ms): shorter than one 400 ms gating block, so no loudness: an error.
    d = case("too-short-to-measure", ["master.too-short-to-measure"])
    write_wav(os.path.join(d, "a.wav"), tone(100 / RATE))

    # 1 s: measurable, only flagged as short.
    d = case("short-but-measurable", ["master.too-short"], exit_code=0)
    write_wav(os.path.join(d, "a.wav"), tone(1.0))

    d = case("zero-length", ["master.not-audio"])
    open(os.path.join(d, "a.wav"), "wb").close()

    d = case("text-named-wav", ["master.not-audio"])
    open(os.path.join(d, "a.wav"), "w").write("These are the liner notes, not audio.\n" * 20)

    d = case("wrong-md5", ["master.md5-mismatch"])
    flac = os.path.join(d, "a.flac")
    sox(good, flac)
    b = bytearray(open(flac, "rb").read())
    si = b.index(b"fLaC") + 8  # STREAMINFO body after the block header
    for k in range(18, 34):  # the MD5 is the last 16 bytes of STREAMINFO
        b[si + k] ^= 0x5A
    open(flac, "wb").write(b)

    d = case("lying-total-samples", ["master.truncated"])
    flac = os.path.join(d, "a.flac")
    sox(good, flac)
    b = bytearray(open(flac, "rb").read())
    si = b.index(b"fLaC") + 8
    # total samples: low 36 bits of bytes 13..18 of STREAMINFO; claim twice as many.
    word = int.from_bytes(b[si + 13:si + 18], "big")
    total = word & ((1 << 36) - 1)
    word = (word & ~((1 << 36) - 1)) | (total * 2)
    b[si + 13:si + 18] = word.to_bytes(5, "big")
    open(flac, "wb").write(b)

    d = case("silence", ["master.silent"])
    write_wav(os.path.join(d, "a.wav"), [0.0] * (RATE * 3 * 2))

    d = case("clipping", ["master.clipping-severe"])
    write_wav(os.path.join(d, "a.wav"), [max(-1.0, min(1.0, 3 * s)) for s in tone(3.0)])

    d = case("8khz-8bit", ["master.sample-rate", "master.bit-depth"])
    write_wav(os.path.join(d, "a.wav"), tone(3.0, rate=8000, channels=1), rate=8000,
              channels=1, bits=8)

    d = case("too-many-channels", ["master.limit-channels"])
    sox("-n", "-r", "44100", "-b", "16", "-c", "12", os.path.join(d, "a.wav"),
        "synth", "3", "sine", "440", "vol", "0.3")

    d = case("lossy-mp3", ["master.lossy"])
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", good, "-c:a", "libmp3lame",
                    "-b:a", "192k", os.path.join(d, "a.mp3")], check=True)

    d = case("leading-silence-and-dc", ["master.leading-silence", "master.dc-offset"],
             exit_code=0)
    write_wav(os.path.join(d, "a.wav"), [0.0] * (RATE * 3 * 2) + tone(3.0, offset=0.02))

    d = case("malformed-json", ["metadata.syntax"])
    shutil.copy(good, os.path.join(d, "a.wav"))
    open(os.path.join(d, "release.json"), "w").write('{"title": "x", "tracks": [\n')

    d = case("bad-isrc-upc-territory",
             ["metadata.isrc", "metadata.upc", "metadata.territory", "metadata.release-date"])
    shutil.copy(good, os.path.join(d, "a.wav"))
    release(d, [track("a.wav", 1, isrc="US-RC1-7-607839")], upc="192026000018",
            territories=["GB", "UK"], release_date="2026-13-01")

    d = case("missing-and-duplicate-tracks",
             ["metadata.missing-file", "metadata.track-number", "metadata.unlisted-file",
              "metadata.isrc-duplicate"])
    for f in ("a.wav", "b.wav", "c.wav"):
        shutil.copy(good, os.path.join(d, f))
    release(d, [track("a.wav", 1), track("b.wav", 1, isrc="QZ-ES6-26-00001"),
                track("gone.wav", 3)])

    d = case("unknown-field-and-types", ["metadata.unknown-field", "metadata.type",
                                         "metadata.missing-field"])
    shutil.copy(good, os.path.join(d, "a.wav"))
    release(d, [{"file": "a.wav", "isrc": "QZ-ES6-26-00001", "title": 7, "track_number": 1}],
            colour="blue")

    d = case("gapless-mismatch", ["release.gapless-mismatch"])
    shutil.copy(good, os.path.join(d, "a.wav"))
    write_wav(os.path.join(d, "b.wav"), tone(3.0, rate=48000), rate=48000)
    release(d, [track("a.wav", 1), track("b.wav", 2)], gapless=True)

    os.remove(good)
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2, sort_keys=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(64)
    sys.exit(main(sys.argv[1]))
