"""Audio of avatar sessions, held where the socket is (never in the session's mailbox):

- a voice frame's base64 PCM16 decoded and checked (even byte count, a known sample rate);
- each segment written as it arrives to a WAV file in the blob area (AVATAR_BLOB_DIR, by
  default ``<data dir>/avatar_audio/<session id>/<segment>.<connection>.wav``), so a segment
  costs no memory however long it is, and its path is what the session's log references; files older
  than AVATAR_AUDIO_RETENTION_HOURS (24) are deleted by a sweep, the log keeping the
  reference and the checksum;
- the lip-sync track: the mouth's openness per video frame, from the loudness (RMS, in dB
  below full scale) of the samples that frame covers. Frame i of a segment covers samples
  [floor(i*rate/fps), floor((i+1)*rate/fps)); a segment of n samples has ceil(n*fps/rate)
  frames, the last one possibly partial.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import os
import shutil
import time
import wave

import numpy as np

__all__ = ["AudioError", "LipSync", "SegmentFile", "decode_pcm16", "openness", "sweep",
           "track_of"]

#: loudness mapped to a closed mouth and to a fully open one (dB below full scale)
QUIET_DB, LOUD_DB = -50.0, -10.0


class AudioError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def decode_pcm16(audio: str) -> np.ndarray:
    """Little-endian signed 16-bit samples from base64 text."""
    try:
        raw = base64.b64decode(audio, validate=True)
    except (binascii.Error, ValueError):
        raise AudioError("INVALID_AUDIO", "audio is not valid base64") from None
    if not raw:
        raise AudioError("INVALID_AUDIO", "audio is empty")
    if len(raw) % 2:
        raise AudioError("INVALID_AUDIO", f"PCM16 audio has an even number of bytes; got "
                                          f"{len(raw)}")
    return np.frombuffer(raw, dtype="<i2")


def openness(samples: np.ndarray) -> float:
    """0 (closed) to 1 (open) from the samples' RMS loudness."""
    if samples.size == 0:
        return 0.0
    rms = math.sqrt(float(np.mean(np.square(samples.astype(np.float64)))))
    if rms <= 0.0:
        return 0.0
    db = 20.0 * math.log10(rms / 32768.0)
    return round(min(1.0, max(0.0, (db - QUIET_DB) / (LOUD_DB - QUIET_DB))), 3)


class LipSync:
    """One segment's track, fed chunk by chunk; samples of a frame not yet complete are carried
    to the next chunk."""

    def __init__(self, sample_rate: int, fps: int) -> None:
        self.rate, self.fps = sample_rate, fps
        self.samples = 0      # received
        self.frames = 0       # emitted
        self._carry = np.zeros(0, dtype="<i2")

    def _bound(self, frame: int) -> int:
        return (frame * self.rate) // self.fps

    def feed(self, pcm: np.ndarray) -> list[float]:
        """Openness of every frame this chunk completes."""
        start = self.samples - self._carry.size  # sample index of _carry[0]
        buffer = np.concatenate((self._carry, pcm)) if self._carry.size else pcm
        self.samples += pcm.size
        out = []
        while self._bound(self.frames + 1) <= self.samples:
            lo, hi = self._bound(self.frames) - start, self._bound(self.frames + 1) - start
            out.append(openness(buffer[lo:hi]))
            self.frames += 1
        self._carry = buffer[self._bound(self.frames) - start:].copy()
        return out

    def flush(self) -> list[float]:
        """The last, partial frame (the segment ended)."""
        if not self._carry.size:
            return []
        self.frames += 1
        last, self._carry = self._carry, np.zeros(0, dtype="<i2")
        return [openness(last)]

    @property
    def seconds(self) -> float:
        return self.samples / self.rate


class SegmentFile:
    """A segment's audio as a mono PCM16 WAV, written chunk by chunk."""

    def __init__(self, root: str, session_id: str, segment: int, sample_rate: int,
                 connection: str = "") -> None:
        # the connection in the name: a socket a newer one replaced may still be writing its
        # last segment while the newer one opens its first
        name = f"{segment:05d}.{connection}.wav" if connection else f"{segment:05d}.wav"
        self.relative = os.path.join(session_id, name)
        self.path = os.path.join(root, self.relative)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._wav = wave.open(self.path, "wb")
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate)
        self._hash = hashlib.sha256()
        self.closed = False

    def write(self, pcm: np.ndarray) -> None:
        data = pcm.astype("<i2", copy=False).tobytes()
        self._wav.writeframesraw(data)
        self._hash.update(data)

    def close(self) -> str:
        """Closes the file (its header then says how long it is); the PCM data's sha256."""
        if not self.closed:
            self.closed = True
            self._wav.close()
        return self._hash.hexdigest()


def track_of(path: str, fps: int) -> list[float] | None:
    """A segment's lip-sync track read back from its WAV, frame for frame what the socket
    sent; None when the file is gone (past retention)."""
    try:
        wav = wave.open(path, "rb")
    except FileNotFoundError:
        return None
    with wav:
        sync, mouth = LipSync(wav.getframerate(), fps), []
        while chunk := wav.readframes(48_000):
            mouth += sync.feed(np.frombuffer(chunk, dtype="<i2"))
        return mouth + sync.flush()


def sweep(root: str, retention_seconds: float, now: float | None = None) -> int:
    """Deletes the sessions' audio directories not written for ``retention_seconds``."""
    now = time.time() if now is None else now
    removed = 0
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            if entry.is_dir() and now - entry.stat().st_mtime > retention_seconds:
                shutil.rmtree(entry.path, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed
