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

from rllib_metamapg.tabular.kernels import _uniform  # splitmix64, one stream per run


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
def _update_run(target, acts, orders, chunks, lr, clip, kl_cutoff, grad_clip, sgd,
                m, v, t, delta):
    """One run: updates ``delta``, ``m``, ``v`` in place; returns ``(t, epochs, kl)``."""
    k = target.shape[0]
    length = acts.shape[0]
    epochs = 0
    b1, b2, eps = 0.9, 0.999, 1e-8
    counts = np.zeros(k)
    logp = np.zeros(k)
    grad = np.zeros(k)
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
            # log_softmax(target + delta)
            mx = -np.inf
            for j in range(k):
                logp[j] = target[j] + delta[j]
                mx = max(mx, logp[j])
            z = 0.0
            for j in range(k):
                z += math.exp(logp[j] - mx)
            lz = mx + math.log(z)
            s = 0.0
            n = max(float(size), 1.0)
            for j in range(k):
                logp[j] -= lz
                r = math.exp(logp[j] - target[j])
                cj = (counts[j] / n) * r if r > 1.0 - clip else 0.0
                grad[j] = cj
                s += cj
            norm = 0.0
            for j in range(k):
                grad[j] = -(grad[j] - s * math.exp(logp[j]))
                norm += grad[j] * grad[j]
            norm = max(math.sqrt(norm), 1e-12)
            scale = min(grad_clip / norm, 1.0)
            t += 1.0
            for j in range(k):
                g = grad[j] * scale
                if sgd:
                    delta[j] += lr * g
                    continue
                m[j] = b1 * m[j] + (1 - b1) * g
                v[j] = b2 * v[j] + (1 - b2) * g * g
                delta[j] += lr * (m[j] / (1 - b1 ** t)) / (math.sqrt(v[j] / (1 - b2 ** t)) + eps)
            # KL(pi_theta || pi_phi) at the new delta
            mx = -np.inf
            for j in range(k):
                mx = max(mx, target[j] + delta[j])
            z = 0.0
            for j in range(k):
                z += math.exp(target[j] + delta[j] - mx)
            lz = mx + math.log(z)
            kl = 0.0
            for j in range(k):
                kl += math.exp(target[j]) * (target[j] - (target[j] + delta[j] - lz))
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
