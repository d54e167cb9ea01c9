"""PCM WAV writing shared by the fixture and bad-input generators (standard library only)."""
import struct
import wave


def write_wav(path, samples, rate=44100, channels=2, bits=16):
    """Interleaved float `samples` (full scale = 1.0), rounded and clamped to `bits`
    (8-bit WAV is unsigned, wider depths little-endian two's complement)."""
    scale = float(1 << (bits - 1))
    with wave.open(path, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(bits // 8)
        w.setframerate(rate)
        data = bytearray()
        for s in samples:
            v = max(-int(scale), min(int(scale) - 1, int(round(s * scale))))
            if bits == 8:
                data += struct.pack("<B", v + 128)
            else:
                data += struct.pack("<i", v)[: bits // 8]
        w.writeframes(bytes(data))
