"""Keyword-spotting data from synthesised speech: espeak-ng speaks the 10 MLPerf Tiny keywords, then MFCCs.

No speech data set ships in a pip or Debian package, so this is *synthesised* speech, not recordings: Debian's
``espeak-ng`` (a formant synthesiser) speaks each word with one of its English voices and voice variants, at a
random speed and pitch, placed at a random offset in a one-second clip with background noise at a random SNR.
The twelve classes are those of MLPerf Tiny's keyword-spotting benchmark (Speech Commands v2): the ten keywords,
"unknown" (other words) and "silence" (noise alone). The test split uses speakers (voice + variant) that no
training clip used, as Speech Commands splits by speaker.

Features follow MLPerf Tiny's DS-CNN front end: 16 kHz audio, 30 ms Hann windows every 20 ms, 40 mel bands from
20 Hz to 4 kHz, log, DCT, 10 coefficients: 50 frames x 10 MFCCs. ``log_mel_windows`` gives the anomaly-detection
front end instead (128 mel bands, 1,024-sample frames every 512 samples, in dB, 5 frames a window).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.fft import dct, rfft
from scipy.signal import resample_poly

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
CLASSES = (*KEYWORDS, "unknown", "silence")
# Speech Commands' other words, spoken for the "unknown" class.
UNKNOWN_WORDS = (
    "bed", "bird", "cat", "dog", "eight", "five", "four", "happy", "house", "marvin", "nine", "one", "seven",
    "sheila", "six", "three", "tree", "two", "wow", "zero", "backward", "forward", "follow", "learn", "visual",
)  # fmt: skip
# espeak-ng's English voices (its own gmw voices; the mbrola ones need a package that is not installed) and the
# variants that change the speaker: sex, formants, roughness.
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5", "croak", "klatt", "klatt2",
    "klatt3", "klatt4", "edward", "iven", "john", "linda", "robert", "steph", "travis", "victor", "paul", "quincy",
)  # fmt: skip
RATE = 16000
CLIP = RATE  # one second
FRAME, HOP, FRAMES, MELS, MFCCS = 480, 320, 50, 40, 10  # 30 ms every 20 ms


class SpeechError(RuntimeError):
    """espeak-ng is missing or failed."""


def need_espeak() -> str:
    found = shutil.which("espeak-ng")
    if not found:
        raise SpeechError("espeak-ng is not installed: apt-get install espeak-ng (run.sh does it as root)")
    return found


def speak(word: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """espeak-ng's waveform for ``word`` resampled to 16 kHz, float32 in [-1, 1], leading/trailing silence cut."""
    done = subprocess.run(
        [need_espeak(), "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", word],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0 or not done.stdout:
        raise SpeechError(f"espeak-ng failed on {word!r} with voice {voice}: {done.stderr.decode().strip()}")
    with wave.open(io.BytesIO(done.stdout)) as w:
        rate = w.getframerate()
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    audio = resample_poly(audio, RATE, rate).astype(np.float32)
    loud = np.flatnonzero(np.abs(audio) > 0.02)
    return audio[loud[0] : loud[-1] + 1] if loud.size else audio


def noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """White, pink or brown noise (unit RMS): the background of every clip, and the whole of a "silence" clip."""
    white = rng.standard_normal(n)
    colour = rng.integers(3)
    if colour == 0:
        out = white
    else:  # shape the spectrum: 1/f (pink) or 1/f^2 (brown) power
        spectrum = np.fft.rfft(white)
        f = np.arange(1, spectrum.size + 1, dtype=float)
        out = np.fft.irfft(spectrum / f ** (0.5 * colour), n)
    return (out / (np.sqrt(np.mean(out**2)) + 1e-12)).astype(np.float32)


def place(rng: np.random.Generator, speech: np.ndarray | None) -> np.ndarray:
    """A one-second clip: the word at a random offset (cut to 1 s if longer), noise at 0-30 dB SNR under it."""
    clip = np.zeros(CLIP + FRAME, np.float32)  # 50 frames of 30 ms every 20 ms need 1.01 s
    if speech is None:  # silence: background noise alone, soft or loud
        return noise(rng, clip.size) * np.float32(10 ** rng.uniform(-3.5, -1.0))
    speech = speech[:CLIP]
    start = rng.integers(0, CLIP - speech.size + 1)
    clip[start : start + speech.size] = speech * np.float32(rng.uniform(0.3, 1.0))
    rms = np.sqrt(np.mean(speech**2)) + 1e-9
    snr_db = rng.uniform(0, 30)
    return clip + noise(rng, clip.size) * np.float32(rms * 10 ** (-snr_db / 20))


def _mel_filters(n_fft: int, mels: int, low: float, high: float) -> np.ndarray:
    def to_mel(hz: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    edges = 700.0 * (10 ** (np.linspace(to_mel(np.array(low)), to_mel(np.array(high)), mels + 2) / 2595.0) - 1)
    bins = np.fft.rfftfreq(n_fft, 1.0 / RATE)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - lo) / (mid - lo)
    falling = (hi - bins) / (hi - mid)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


_MFCC_FILTERS = _mel_filters(512, MELS, 20.0, 4000.0)
_LOG_MEL_FILTERS = _mel_filters(1024, 128, 0.0, RATE / 2)


def _power_frames(audio: np.ndarray, frame: int, hop: int, n_fft: int) -> np.ndarray:
    count = 1 + (audio.size - frame) // hop
    index = np.arange(frame)[None, :] + hop * np.arange(count)[:, None]
    return np.abs(rfft(audio[index] * np.hanning(frame).astype(np.float32), n=n_fft, axis=-1)) ** 2


def mfcc(clip: np.ndarray) -> np.ndarray:
    """50 x 10 x 1 MFCCs of a 1.01 s clip (MLPerf Tiny's DS-CNN input)."""
    mel = _power_frames(clip, FRAME, HOP, 512) @ _MFCC_FILTERS.T
    return dct(np.log(mel + 1e-6), type=2, norm="ortho", axis=-1)[:FRAMES, :MFCCS, None].astype(np.float32)


def log_mel_windows(audio: np.ndarray, frames: int = 5) -> np.ndarray:
    """Windows of ``frames`` consecutive 128-band log-mel frames in dB (MLPerf Tiny's anomaly-detection input)."""
    mel = _power_frames(audio, 1024, 512, 1024) @ _LOG_MEL_FILTERS.T
    db = (10.0 * np.log10(mel + 1e-10)).astype(np.float32)
    return np.stack([db[i : i + frames] for i in range(db.shape[0] - frames + 1)])[..., None]


@dataclass(frozen=True)
class Utterance:
    word: str | None  # None: silence
    label: int
    voice: str
    speed: int
    pitch: int


def _speakers(rng: np.random.Generator, test_fraction: float) -> tuple[list[str], list[str]]:
    everyone = [f"{v}+{variant}" for v in VOICES for variant in VARIANTS]
    order = rng.permutation(len(everyone))
    n_test = max(1, round(test_fraction * len(everyone)))
    return [everyone[i] for i in order[n_test:]], [everyone[i] for i in order[:n_test]]


def _plan(rng: np.random.Generator, per_class: int, speakers: list[str]) -> list[Utterance]:
    plan = []
    for label, name in enumerate(CLASSES):
        for _ in range(per_class):
            word = None if name == "silence" else (rng.choice(UNKNOWN_WORDS) if name == "unknown" else name)
            plan.append(
                Utterance(
                    None if word is None else str(word),
                    label,
                    str(rng.choice(speakers)),
                    int(rng.integers(110, 230)),
                    int(rng.integers(15, 85)),
                )
            )
    return plan


def synthesise(plan: list[Utterance], workers: int = 4) -> list[np.ndarray | None]:
    """espeak-ng's audio for every utterance of ``plan`` (None for silence), several processes at a time."""
    need_espeak()

    def one(u: Utterance) -> np.ndarray | None:
        return None if u.word is None else speak(u.word, u.voice, u.speed, u.pitch)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, plan))


def keyword_spotting(
    per_class: int = 200, test_per_class: int = 50, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``x_train, y_train, x_test, y_test``: MFCCs (N, 50, 10, 1) of the 12 classes, test speakers held out."""
    rng = np.random.default_rng(seed)
    train_speakers, test_speakers = _speakers(rng, 0.2)
    arrays = []
    for count, speakers in ((per_class, train_speakers), (test_per_class, test_speakers)):
        plan = _plan(rng, count, speakers)
        clips = [place(rng, audio) for audio in synthesise(plan)]
        x = np.stack([mfcc(c) for c in clips])
        arrays += [x, np.array([u.label for u in plan], dtype=np.int64)]
    return arrays[0], arrays[1], arrays[2], arrays[3]


def speech_log_mel(
    clips: int = 300, test_clips: int = 100, windows_per_clip: int = 8, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``x_train, x_test``: 5 x 128 x 1 log-mel windows of spoken keywords and other words, test speakers held out."""
    rng = np.random.default_rng(seed)
    train_speakers, test_speakers = _speakers(rng, 0.2)
    out = []
    for count, speakers in ((clips, train_speakers), (test_clips, test_speakers)):
        plan = [u for u in _plan(rng, max(1, count // 11), speakers) if u.word is not None][:count]
        windows = []
        for audio in synthesise(plan):
            clip = place(rng, audio)
            every = log_mel_windows(clip)
            windows.append(every[rng.choice(len(every), size=min(windows_per_clip, len(every)), replace=False)])
        out.append(np.concatenate(windows))
    return out[0], out[1]
