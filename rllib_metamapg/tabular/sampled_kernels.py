"""Compiled (numba) sampled-mode kernel for repeated Bernoulli games.

Whole-episode REINFORCE taylor estimates (see :mod:`.sampled`) for memory-one
games with two actions per player, one run per parallel task.  Each run draws
its uniforms from its own splitmix64 stream, so results do not depend on
thread scheduling.  The estimator half, :func:`estimates_from_stats`, is the
same code the kernel runs and is tested equal to the torch implementation on
identical episodes; the sampling half is tested statistically.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


@njit(cache=True, inline="always")
def _uniform(x):
    x = x + _GOLDEN
    z = (x ^ (x >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    z = z ^ (z >> np.uint64(31))
    return x, (z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, inline="always")
def _return_times_score_dot(sc, ret, b, j, grads, i, k):
    """``ret[b, j] * <sc[b, j], grads[i, k]>``: player j's return times its score
    in episode b dotted with i's gradient estimate with respect to k."""
    u = 0.0
    for s in range(sc.shape[2]):
        u += sc[b, j, s] * grads[i, k, s]
    return ret[b, j] * u


@njit(cache=True)
def _estimate_run(sc, vis, ret, p0, eta, want, v, own, peer):
    """Estimates for one run from per-episode scores ``sc`` and visits ``vis``
    ``(B, N, S)`` and returns ``ret`` ``(B, N)``; writes ``(N, S)`` outputs."""
    batch, n, s_num = sc.shape
    grads = np.zeros((n, n, s_num))
    for b in range(batch):
        for i in range(n):
            gi = ret[b, i]
            for j in range(n):
                for s in range(s_num):
                    grads[i, j, s] += gi * sc[b, j, s]
    grads /= batch
    for i in range(n):
        for s in range(s_num):
            v[i, s] = grads[i, i, s]
    if not want:
        return
    for i in range(n):
        o = np.zeros(s_num)
        pp = np.zeros(s_num)
        vw = np.zeros(s_num)
        for b in range(batch):
            c = _return_times_score_dot(sc, ret, b, i, grads, i, i)
            for s in range(s_num):
                o[s] += c * sc[b, i, s]
                vw[s] += ret[b, i] * vis[b, i, s]
            for j in range(n):
                if j == i:
                    continue
                c = _return_times_score_dot(sc, ret, b, j, grads, i, j)
                for s in range(s_num):
                    pp[s] += c * sc[b, i, s]
        for s in range(s_num):
            p = p0[i, s]
            own[i, s] = eta * (o[s] - vw[s] * p * (1.0 - p) * grads[i, i, s]) / batch
            peer[i, s] = eta * pp[s] / batch


@njit(cache=True)
def episodes_generic(p0, cdf, pay, discount, horizon, seed, sc, vis, ret):
    """Samples one run's episodes into ``sc``/``vis`` ``(B, N, S)`` and ``ret``
    ``(B, N)``: score (action-0 count minus its expectation), visits and
    discounted return per episode and player.  Episode b's t-th draw is the
    stream's ``b * horizon + t``-th."""
    batch, n, s_num = sc.shape
    k_num = cdf.shape[1]
    x = seed
    seen = np.zeros(s_num)
    for b in range(batch):
        state = 0
        w = 1.0
        seen[:] = 0.0
        for _t in range(horizon):
            x, u = _uniform(x)
            # Branch-free inverse CDF and action bits: the draws are random,
            # so branches on them mispredict about half the time.
            k = 0
            for c in range(k_num - 1):
                k += u > cdf[state, c]
            seen[state] += 1.0  # every player visits the same state
            for j in range(n):
                sc[b, j, state] += 1 - ((k >> (n - 1 - j)) & 1)
                ret[b, j] += w * pay[j, k]
            w *= discount
            state = 1 + k
        for j in range(n):
            for s in range(s_num):
                vis[b, j, s] = seen[s]
                sc[b, j, s] -= p0[j, s] * seen[s]


@njit(cache=True, inline="always")
def _two_player_stats(cnt, r0, r1, p0, b, sc, vis, ret):
    ret[b, 0] = r0
    ret[b, 1] = r1
    for s in range(p0.shape[1]):
        seen = cnt[s, 0] + cnt[s, 1] + cnt[s, 2] + cnt[s, 3]
        vis[b, 0, s] = seen
        vis[b, 1, s] = seen
        sc[b, 0, s] = cnt[s, 0] + cnt[s, 1] - p0[0, s] * seen  # joint 0b0x: player 0 chose 0
        sc[b, 1, s] = cnt[s, 0] + cnt[s, 2] - p0[1, s] * seen


@njit(cache=True)
def episodes_two_player(p0, cdf, pay, discount, horizon, seed, sc, vis, ret):
    """:func:`episodes_generic` for two players (four joint actions), bit for bit.

    Each episode's state chain (draw, inverse CDF, next state) is a serial
    dependency, so two episodes run interleaved to keep the core busy.  Their
    draws stay those of the generic order because splitmix64 jumps ahead by
    adding to its state: episode b starts at ``seed + b * horizon * golden``.
    Unrolled constants (two players, four joint actions) keep the per-step
    tallies in registers.
    """
    batch, _, s_num = sc.shape
    jump = np.uint64(horizon) * _GOLDEN
    ca = np.zeros((s_num, 4))
    cb = np.zeros((s_num, 4))
    for ba in range(0, batch, 2):
        bb = ba + 1
        xa = seed + np.uint64(ba) * jump
        xb = seed + np.uint64(bb) * jump
        sa = 0
        sb = 0
        w = 1.0
        ra0 = 0.0
        ra1 = 0.0
        rb0 = 0.0
        rb1 = 0.0
        ca[:, :] = 0.0
        cb[:, :] = 0.0
        for _t in range(horizon):
            xa, ua = _uniform(xa)
            xb, ub = _uniform(xb)
            ka = (ua > cdf[sa, 0]) + (ua > cdf[sa, 1]) + (ua > cdf[sa, 2])
            kb = (ub > cdf[sb, 0]) + (ub > cdf[sb, 1]) + (ub > cdf[sb, 2])
            ca[sa, ka] += 1.0
            cb[sb, kb] += 1.0
            ra0 += w * pay[0, ka]
            ra1 += w * pay[1, ka]
            rb0 += w * pay[0, kb]
            rb1 += w * pay[1, kb]
            w *= discount
            sa = 1 + ka
            sb = 1 + kb
        _two_player_stats(ca, ra0, ra1, p0, ba, sc, vis, ret)
        if bb < batch:  # an odd batch's last twin is sampled and dropped
            _two_player_stats(cb, rb0, rb1, p0, bb, sc, vis, ret)


@njit(parallel=True, cache=True)
def reinforce_taylor(p0, cdf, pay, discount, horizon, batch, eta, seeds, want):
    """Samples ``batch`` episodes per run and returns ``(v, own, peer)``, each ``(R, N, S)``.

    Args:
        p0: ``(R, N, S)`` probability of action 0 per run, player and state.
        cdf: ``(R, S, K)`` cumulative joint-action probabilities per state.
        pay: ``(N, K)`` payoffs by joint action (joint = sum_j a_j 2^(N-1-j)).
        seeds: ``(R,)`` uint64 stream seeds.
    """
    r_num, n, s_num = p0.shape
    v = np.zeros((r_num, n, s_num))
    own = np.zeros((r_num, n, s_num))
    peer = np.zeros((r_num, n, s_num))
    for r in prange(r_num):
        sc = np.zeros((batch, n, s_num))
        vis = np.zeros((batch, n, s_num))
        ret = np.zeros((batch, n))
        if n == 2 and cdf.shape[2] == 4:
            episodes_two_player(p0[r], cdf[r], pay, discount, horizon, seeds[r], sc, vis, ret)
        else:
            episodes_generic(p0[r], cdf[r], pay, discount, horizon, seeds[r], sc, vis, ret)
        _estimate_run(sc, vis, ret, p0[r], eta, want, v[r], own[r], peer[r])
    return v, own, peer


@njit(cache=True)
def estimates_from_stats(sc, vis, ret, p0, eta):
    """The kernel's estimator on given episode statistics ``(R, B, N, S)``."""
    r_num, _, n, s_num = sc.shape
    v = np.zeros((r_num, n, s_num))
    own = np.zeros((r_num, n, s_num))
    peer = np.zeros((r_num, n, s_num))
    for r in range(r_num):
        _estimate_run(sc[r], vis[r], ret[r], p0[r], eta, True, v[r], own[r], peer[r])
    return v, own, peer
