"""Compiled (numba) behaviour update of PROPS / MA-PROPS, one run per parallel task.

The same update as :meth:`.behaviour.TabularSampler.update_reference` (torch, the
reference it is tested equal to on identical minibatch orders): ``epochs`` passes
of ``chunks`` minibatches over the buffer, the clipped objective's closed-form
ascent direction, a per-run gradient-norm clip, Adam with state kept across
updates, and the KL stop.  The behaviour update runs after every ``m`` env steps
with up to ``epochs * minibatches`` tiny steps each; compiled, it costs
microseconds per run instead of a few milliseconds of tensor calls.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from rllib_metamapg.tabular.sampled_kernels import _uniform  # splitmix64, one stream per run


@njit(cache=True)
def _shuffled_orders(epochs, length, seed):
    """``(epochs, length)`` Fisher-Yates permutations from one run's own stream."""
    out = np.empty((epochs, length), np.int64)
    x = seed
    for e in range(epochs):
        for i in range(length):
            out[e, i] = i
        for i in range(length - 1, 0, -1):
            x, u = _uniform(x)
            j = int(u * (i + 1))
            out[e, i], out[e, j] = out[e, j], out[e, i]
    return out


@njit(cache=True)
def _normalise(target, delta, e):
    """``e = softmax(target + delta)``; returns its log-normaliser."""
    mx = -np.inf
    for j in range(target.shape[0]):
        mx = max(mx, target[j] + delta[j])
    z = 0.0
    for j in range(target.shape[0]):
        e[j] = math.exp(target[j] + delta[j] - mx)
        z += e[j]
    for j in range(target.shape[0]):
        e[j] /= z
    return mx + math.log(z)


@njit(cache=True)
def _update_run(target, acts, orders, chunks, lr, clip, kl_cutoff, grad_clip, sgd,
                m, v, t, delta):
    """One run: updates ``delta``, ``m``, ``v`` in place; returns ``(t, epochs, kl)``.

    One softmax per step serves both the KL stop after it and the next step's
    gradient, and ``r = p / pi_theta`` reuses the target's probabilities: the update
    runs after every env step, so its exponentials are most of a composition's cost.
    """
    k = target.shape[0]
    length = acts.shape[0]
    epochs = 0
    b1, b2, eps = 0.9, 0.999, 1e-8
    counts = np.zeros(k)
    grad = np.zeros(k)
    p = np.zeros(k)
    pt = np.zeros(k)
    zero = np.zeros(k)
    _normalise(target, zero, pt)  # pi_theta (target holds log-probabilities)
    lz0 = _normalise(target, delta, p)
    kl = 0.0
    live = True
    base, extra = length // chunks, length % chunks
    for e in range(orders.shape[0]):
        start = 0
        for c in range(chunks):
            size = base + (1 if c < extra else 0)
            counts[:] = 0.0
            for idx in range(start, start + size):
                counts[acts[orders[e, idx]]] += 1.0
            start += size
            s = 0.0
            n = max(float(size), 1.0)
            for j in range(k):
                r = p[j] / pt[j]
                cj = (counts[j] / n) * r if r > 1.0 - clip else 0.0
                grad[j] = cj
                s += cj
            norm = 0.0
            for j in range(k):
                grad[j] = -(grad[j] - s * p[j])
                norm += grad[j] * grad[j]
            norm = max(math.sqrt(norm), 1e-12)
            scale = min(grad_clip / norm, 1.0)
            t += 1.0
            c1 = lr / (1 - b1 ** t)
            c2 = 1.0 / (1 - b2 ** t)
            for j in range(k):
                g = grad[j] * scale
                if sgd:
                    delta[j] += lr * g
                    continue
                m[j] = b1 * m[j] + (1 - b1) * g
                v[j] = b2 * v[j] + (1 - b2) * g * g
                delta[j] += c1 * m[j] / (math.sqrt(v[j] * c2) + eps)
            # KL(pi_theta || pi_phi) at the new delta = lz - lz0 - sum_j pi_theta_j delta_j
            lz = _normalise(target, delta, p)
            kl = lz - lz0
            for j in range(k):
                kl -= pt[j] * delta[j]
            if kl > kl_cutoff:
                live = False
                break
        if not live:
            break
        epochs += 1
    return t, epochs, kl


@njit(parallel=True, cache=True)
def behaviour_update(target, acts, orders, seeds, num_epochs, chunks, lr, clip, kl_cutoff,
                     grad_clip, sgd, m, v, t, delta, epochs, kls):
    """Every run in parallel. ``delta`` must come in as zeros (pi_phi = pi_theta);
    ``m``, ``v``, ``t`` are the runs' Adam state (updated in place).  ``orders``
    ``(R, epochs, L)`` gives the minibatch orders; when its last axis is empty each
    run shuffles with its own stream seeded by ``seeds[r]`` (independent of threads)."""
    for r in prange(target.shape[0]):
        own = (orders[r] if orders.shape[2] > 0
               else _shuffled_orders(num_epochs, acts.shape[1], seeds[r]))
        t[r], epochs[r], kls[r] = _update_run(target[r], acts[r], own, chunks, lr,
                                               clip, kl_cutoff, grad_clip, sgd, m[r], v[r],
                                               t[r], delta[r])


@njit(cache=True)
def _draw_group(logits, delta, lo, hi, u):
    """Index in ``[0, hi - lo)`` drawn from ``softmax(logits + delta)`` on ``[lo, hi)``."""
    mx = -np.inf
    for j in range(lo, hi):
        mx = max(mx, logits[j] + delta[j])
    z = 0.0
    for j in range(lo, hi):
        z += math.exp(logits[j] + delta[j] - mx)
    acc = 0.0
    for j in range(lo, hi - 1):
        acc += math.exp(logits[j] + delta[j] - mx) / z
        if u <= acc:
            return j - lo
    return hi - 1 - lo


@njit(parallel=True, cache=True)
def draw_batch(targets, offsets, strides, sizes, batch, every, uniforms, orders, seeds,
               num_epochs, minibatches, lr, clip, kl_cutoff, grad_clip, sgd, m, v, t,
               delta, counts, epochs, kls):
    """``batch`` joint actions per run, each drawn from the behaviour policy and followed
    (every ``every`` draws) by the behaviour update on everything drawn so far.

    The behaviour has groups ``g`` (one over the joint actions for MA-PROPS, one per agent
    for PROPS): group ``g`` owns columns ``offsets[g]:offsets[g + 1]`` of ``targets``
    (its target log-probabilities), ``delta``, ``m`` and ``v``, and its action in joint
    action ``a`` is ``(a // strides[g]) % sizes[g]``.  ``delta`` comes in as zeros (a
    new target and an empty buffer: the first draw is the target's); Adam's state
    ``m``, ``v``, ``t`` persists across calls.  ``counts`` ``(R, K)`` receives how often
    each joint action was drawn.
    ``uniforms`` ``(R, batch, G)`` and ``orders`` ``(R, updates, epochs, batch)``
    replace the runs' own streams when not empty (the reference test)."""
    groups = offsets.shape[0] - 1
    for r in prange(targets.shape[0]):
        buf = np.empty(batch, np.int64)
        gbuf = np.empty(batch, np.int64)
        x = seeds[r]
        update = 0
        for b in range(batch):
            joint = 0
            for g in range(groups):
                if uniforms.shape[1] > 0:
                    u = uniforms[r, b, g]
                else:
                    x, u = _uniform(x)
                a = _draw_group(targets[r], delta[r], offsets[g], offsets[g + 1], u)
                joint += a * strides[g]
            buf[b] = joint
            counts[r, joint] += 1.0
            if (b + 1) % every != 0:
                continue
            length = b + 1
            chunks = min(minibatches, length)
            if orders.shape[3] > 0:
                own = orders[r, update, :, :length]
            else:
                x, u = _uniform(x)
                own = _shuffled_orders(num_epochs, length, np.uint64(u * 2.0**62))
            update += 1
            for g in range(groups):
                lo, hi = offsets[g], offsets[g + 1]
                for i in range(length):
                    gbuf[i] = (buf[i] // strides[g]) % sizes[g]
                for j in range(lo, hi):
                    delta[r, j] = 0.0  # pi_phi = pi_theta at the start of an update
                t[r, g], epochs[r, g], kls[r, g] = _update_run(
                    targets[r, lo:hi], gbuf[:length], own, chunks, lr, clip, kl_cutoff,
                    grad_clip, sgd, m[r, lo:hi], v[r, lo:hi], t[r, g], delta[r, lo:hi])
