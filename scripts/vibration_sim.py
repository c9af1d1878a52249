#!/usr/bin/python3
"""Simulated 3-axis accelerometer on a rotating machine (numpy only).

Used to make the data for the `vibration` example model (scripts/train_examples.py)
and the full vibration test set for benchmarks (scripts/make_test_sets.py).

Sensor and geometry
-------------------
A 3-axis MEMS accelerometer is bolted to a bearing housing of a horizontal shaft
(motor -> coupling -> pump/fan).  Axes: x = radial horizontal, y = radial
vertical, z = axial (along the shaft).  Units are g.  The default sample rate is
1000 Hz and a window is 256 samples (0.256 s, 4-13 shaft revolutions).  The
accelerometer is mounted with a small random tilt (0-8 deg), so the static 1 g of
gravity shows up as a DC offset of about cos(tilt) g on z and a little on x/y.

Every window comes from a different "machine": shaft speed f_r is uniform in
15-50 Hz (900-3000 rpm), with a small random speed drift inside the window.

Signal model shared by all classes
----------------------------------
* 1x (shaft-rate) radial vibration from residual imbalance: a rotating force,
  so x and y see it about 90 deg apart, with a random stiffness ratio between
  the two radial directions (elliptical orbit).
* a small 2x component and a small axial component.
* electrical vibration of the motor at twice the line frequency (100 or 120 Hz)
  with a random small amplitude; it does not follow shaft speed.
* broadband sensor/process noise (white Gaussian), noise level random per
  machine and slightly different per axis.

Fault classes (CLASSES index = label)
-------------------------------------
0 normal         only the shared signal, small 1x amplitude.
1 imbalance      mass imbalance: strong radial 1x (x/y, ~90 deg apart), little
                 2x, little axial.
2 misalignment   coupling misalignment: strong 2x radial plus a strong axial
                 component at 1x and 2x; the axial 1x is shifted ~180 deg
                 (+/- random) from the radial one, as measured across a
                 misaligned coupling; moderate radial 1x.
3 bearing_fault  outer-race defect: each rolling element passing the defect
                 strikes it at the ball-pass frequency BPFO = k * f_r with
                 k in 3.5-5.5 (bearings with ~8-12 balls).  Every strike excites
                 a structural resonance (f_n 150-450 Hz, within the sensor band;
                 damping ratio 0.03-0.10) that rings down exponentially.  Strike
                 amplitudes are modulated at 1x by the rotating load zone and have
                 a +/-1-2 % random slip in timing, as real rolling elements do.
                 The response is mostly radial (projected on x/y/z with random
                 gains).  Added on top of a normal-looking background.

Amplitudes, phases, noise and the fault strength are random, with ranges that
overlap at the edges (a mild imbalance looks like a rough normal machine, a weak
bearing fault is buried in noise), so a small classifier gets about 93-99 %.

API
---
    CLASSES, SAMPLE_RATE, WINDOW
    generate(n, window=256, seed=0, sample_rate=1000.0) -> (x, y)
        x float32 [n, 3, window] (g), y uint8 [n]; balanced classes in random
        order; fully determined by (n, window, seed, sample_rate).
    normalize(x, mean, std) -> per-axis (x - mean) / std

CLI
---
    vibration_sim.py --count N --seed S --out-x X.bin --out-y Y.bin \
        [--normalize-from examples/vibration.meta.json]
writes raw little-endian float32 [N,3,window] and uint8 [N].
"""

import argparse
import json
import sys

import numpy as np

CLASSES = ["normal", "imbalance", "misalignment", "bearing_fault"]
SAMPLE_RATE = 1000.0
WINDOW = 256

# Seeds used by the examples, so every script agrees on which data is which.
TRAIN_SEED = 1
VAL_SEED = 2
TEST_SEED = 1234  # held out: never used for training or model selection


def _u(rng, lo, hi, n):
    """Uniform column vector [n, 1] (broadcasts against the time axis)."""
    return rng.uniform(lo, hi, size=(n, 1))


def _bearing_impulses(rng, t, f_r, phase_r, sel, fs):
    """Sum of decaying resonances excited at BPFO for the rows in `sel`.

    Returns [len(sel), window] in units of 'impulse amplitude' (peak ~1).
    Computed directly with fractional strike times (no sample-grid rounding);
    done in chunks to bound memory ([chunk, window, strikes]).
    """
    m = len(sel)
    window = t.shape[1]
    dur = window / fs
    bpfo = f_r[sel] * rng.uniform(3.5, 5.5, size=(m, 1))  # [m,1] Hz
    f_n = rng.uniform(150.0, 450.0, size=(m, 1))  # resonance Hz
    zeta = rng.uniform(0.03, 0.10, size=(m, 1))  # damping ratio
    decay = zeta * 2 * np.pi * f_n  # 1/s
    mod_depth = rng.uniform(0.2, 0.9, size=(m, 1))  # load-zone modulation

    # Strike times: start before the window so ring-down from earlier strikes
    # is already present at t=0.  Max strikes: 50 Hz*5.5 * 0.256 s + margin.
    k_max = int(np.ceil(55 * 5.5 * dur)) + 4
    k = np.arange(-3, k_max - 3)[None, :]  # [1,K]
    period = 1.0 / bpfo
    jitter = rng.normal(0.0, 0.015, size=(m, k.shape[1])) * period  # slip
    t0 = rng.uniform(0.0, 1.0, size=(m, 1)) * period
    tk = t0 + k * period + jitter  # [m,K]
    amp = 1.0 + mod_depth * np.cos(2 * np.pi * f_r[sel] * tk + phase_r[sel])
    amp *= rng.uniform(0.8, 1.2, size=tk.shape)  # strike-to-strike spread

    out = np.empty((m, window))
    for a in range(0, m, 512):
        b = slice(a, a + 512)
        tau = t[0][None, :, None] - tk[b][:, None, :]  # [c,W,K]
        ring = np.exp(-decay[b][:, :, None] * np.clip(tau, 0, None))
        ring *= np.sin(2 * np.pi * f_n[b][:, :, None] * tau)
        ring *= tau >= 0
        out[b] = np.einsum("cwk,ck->cw", ring, amp[b])
    return out


def generate(n, window=WINDOW, seed=0, sample_rate=SAMPLE_RATE):
    """Simulate n windows. Returns x float32 [n,3,window] in g, y uint8 [n]."""
    rng = np.random.default_rng(seed)
    fs = float(sample_rate)
    y = rng.permutation(np.arange(n) % len(CLASSES)).astype(np.uint8)
    t = (np.arange(window) / fs)[None, :]  # [1,W]

    # Shaft speed with a slow linear drift of up to +/-2 % across the window;
    # phase is the integral of the instantaneous frequency.
    f_r = _u(rng, 15.0, 50.0, n)
    drift = _u(rng, -0.02, 0.02, n) * f_r / (window / fs)  # Hz per second
    phase_r = _u(rng, 0, 2 * np.pi, n)
    theta = 2 * np.pi * (f_r * t + 0.5 * drift * t * t) + phase_r  # [n,W] rad

    is_ = {c: (y == i)[:, None] for i, c in enumerate(CLASSES)}

    # --- amplitudes (g) per machine, per class --------------------------------
    # 1x radial: normal small, imbalance large; ranges touch so a few overlap.
    a1 = _u(rng, 0.005, 0.05, n)
    a1 = np.where(is_["imbalance"], _u(rng, 0.04, 0.30, n), a1)
    a1 = np.where(is_["misalignment"], _u(rng, 0.01, 0.10, n), a1)
    # 2x radial: small except for misalignment (0.5-2x the 1x level).
    a2 = a1 * _u(rng, 0.02, 0.25, n)
    a2 = np.where(is_["misalignment"], _u(rng, 0.03, 0.20, n), a2)
    # axial (relative to the radial 1x): small except for misalignment.
    ax = _u(rng, 0.05, 0.35, n)
    ax = np.where(is_["misalignment"], _u(rng, 0.5, 1.5, n), ax)
    ax_phase = _u(rng, -np.pi / 4, np.pi / 4, n)  # residual axial phase
    ax_phase = np.where(is_["misalignment"], np.pi + _u(rng, -0.6, 0.6, n), ax_phase)

    # Elliptical orbit: y is ~90 deg behind x, with a stiffness ratio.
    ratio = _u(rng, 0.6, 1.3, n)
    quad = np.pi / 2 + _u(rng, -0.4, 0.4, n)
    phase2 = _u(rng, 0, 2 * np.pi, n)

    x_ax = a1 * np.cos(theta) + a2 * np.cos(2 * theta + phase2)
    y_ax = ratio * (a1 * np.cos(theta - quad) + a2 * np.cos(2 * theta + phase2 - quad))
    # Misalignment puts 2x into the axial too (a2 * ax), plus the shifted 1x.
    z_ax = ax * (np.maximum(a1, 0.02) * np.cos(theta + ax_phase)
                 + a2 * np.cos(2 * theta + phase2 + ax_phase))

    # --- bearing fault --------------------------------------------------------
    sel = np.flatnonzero(y == CLASSES.index("bearing_fault"))
    if len(sel):
        imp = _bearing_impulses(rng, t, f_r, phase_r, sel, fs)
        # Peak strength (g); the weakest ones are close to the noise floor.
        strength = rng.uniform(0.03, 0.35, size=(len(sel), 1))
        gains = rng.uniform([0.6, 0.6, 0.1], [1.0, 1.0, 0.4], size=(len(sel), 3))
        gains *= rng.choice([-1.0, 1.0], size=gains.shape)
        x_ax[sel] += strength * gains[:, 0:1] * imp
        y_ax[sel] += strength * gains[:, 1:2] * imp
        z_ax[sel] += strength * gains[:, 2:3] * imp

    sig = np.stack([x_ax, y_ax, z_ax], axis=1)  # [n,3,W]

    # --- electrical 2x line frequency, noise, gravity -------------------------
    f_line = 2 * rng.choice([50.0, 60.0], size=(n, 1, 1))
    a_line = rng.uniform(0.0, 0.02, size=(n, 3, 1))
    p_line = rng.uniform(0, 2 * np.pi, size=(n, 3, 1))
    sig += a_line * np.sin(2 * np.pi * f_line * t[:, None, :] + p_line)

    noise = rng.uniform(0.01, 0.05, size=(n, 1, 1)) * rng.uniform(0.8, 1.2, size=(n, 3, 1))
    sig += noise * rng.standard_normal(size=sig.shape)

    tilt = np.deg2rad(rng.uniform(0, 8, size=n))
    az = rng.uniform(0, 2 * np.pi, size=n)
    g = np.stack([np.sin(tilt) * np.cos(az), np.sin(tilt) * np.sin(az), np.cos(tilt)], axis=1)
    sig += g[:, :, None]

    return sig.astype(np.float32), y


def normalize(x, mean, std):
    """Per-axis normalization, axis 1: (x - mean[c]) / std[c]."""
    mean = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1)
    std = np.asarray(std, dtype=np.float32).reshape(1, -1, 1)
    return ((x - mean) / std).astype(np.float32)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--seed", type=int, default=TEST_SEED)
    p.add_argument("--window", type=int, default=WINDOW)
    p.add_argument("--sample-rate", type=float, default=SAMPLE_RATE)
    p.add_argument("--out-x", required=True, help="raw little-endian float32 [N,3,window]")
    p.add_argument("--out-y", required=True, help="raw uint8 [N]")
    p.add_argument("--normalize-from", help="meta JSON with mean/std (e.g. examples/vibration.meta.json)")
    a = p.parse_args(argv)

    x, y = generate(a.count, window=a.window, seed=a.seed, sample_rate=a.sample_rate)
    if a.normalize_from:
        with open(a.normalize_from) as f:
            meta = json.load(f)
        x = normalize(x, meta["mean"], meta["std"])
    x.astype("<f4").tofile(a.out_x)
    y.tofile(a.out_y)
    print(f"wrote {a.count} windows x[{a.count},3,{a.window}] -> {a.out_x}, y -> {a.out_y}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
