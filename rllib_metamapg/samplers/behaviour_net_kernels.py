"""Compiled (numba) behaviour update of a Delta *network* (RLlib's env runner).

The same update as :meth:`.behaviour_net.BehaviourGroup.update_reference` (torch
autograd, which it is tested equal to): the clipped objective over the buffer,
``epochs`` passes of ``chunks`` minibatches, a gradient-norm clip over all
parameters (as ``torch.nn.utils.clip_grad_norm_``), Adam (as ``torch.optim.Adam``)
with its state kept across updates, and the stop once the mean
``KL(pi_theta || pi_phi)`` over the last minibatch's samples exceeds the cut-off
(exact per state; for a one-state game it is the buffer's KL, and it costs a
minibatch, not the whole buffer, per step).

``Delta(x) = W2^T tanh(W1^T x + b1) + b2`` (one hidden layer; with ``H = 0`` it is
linear, ``W2^T x + b2``), its parameters one flat vector ``[W1, b1, W2, b2]``.
The buffer is stored by distinct state: each sample is ``(state index, joint
action)``, and a minibatch's loss is evaluated once per distinct state it
touches, weighted by its action counts.  Matrix games and the IPD have at most a
handful of states, so a step costs a few microseconds whatever the batch size;
the gradient is backpropagated by hand (the test against autograd guards it).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


def layout(features: int, hidden: int, k: int):
    """Offsets ``(w1, b1, w2, b2, end)`` of the flat parameter vector."""
    width = hidden if hidden > 0 else features
    w1, b1 = 0, features * hidden
    w2 = b1 + hidden
    b2 = w2 + width * k
    return w1, b1, w2, b2, b2 + k


@njit(cache=True)
def _forward(p, x, F, H, K, h, d):
    """``h``: hidden activations (``x`` itself when ``H = 0``); ``d``: Delta(x)."""
    width = H if H > 0 else F
    ob1 = F * H
    ow2 = ob1 + H
    ob2 = ow2 + width * K
    if H > 0:
        for j in range(H):
            s = p[ob1 + j]
            for f in range(F):
                s += x[f] * p[f * H + j]
            h[j] = math.tanh(s)
    else:
        for f in range(F):
            h[f] = x[f]
    for k in range(K):
        s = p[ob2 + k]
        for j in range(width):
            s += h[j] * p[ow2 + j * K + k]
        d[k] = s


@njit(cache=True)
def _log_softmax(t, d, K, lp):
    mx = -np.inf
    for k in range(K):
        z = t[k] + d[k]
        if z > mx:
            mx = z
    s = 0.0
    for k in range(K):
        s += math.exp(t[k] + d[k] - mx)
    lse = mx + math.log(s)
    for k in range(K):
        lp[k] = t[k] + d[k] - lse


@njit(cache=True)
def mean_kl(p, X, T, weight, F, H, K):
    """``sum_u weight_u KL(pi_theta(.|u) || pi_phi(.|u))``."""
    width = H if H > 0 else F
    h = np.empty(width)
    d = np.empty(K)
    lp = np.empty(K)
    total = 0.0
    for u in range(X.shape[0]):
        if weight[u] == 0.0:
            continue
        _forward(p, X[u], F, H, K, h, d)
        _log_softmax(T[u], d, K, lp)
        kl = 0.0
        for k in range(K):
            kl += math.exp(T[u, k]) * (T[u, k] - lp[k])
        total += weight[u] * kl
    return total


@njit(cache=True)
def update_net(p, m, v, t, F, H, K, X, T, state_of, action_of, orders, chunks, lr, clip,
               kl_cutoff, grad_clip, sgd):
    """One behaviour update; ``p``, ``m``, ``v``, ``t`` (Adam's step count, shape
    ``(1,)``) change in place.  Returns ``(epochs completed, KL at the end)``."""
    width = H if H > 0 else F
    ob1 = F * H
    ow2 = ob1 + H
    ob2 = ow2 + width * K
    P = p.shape[0]
    for i in range(ow2, P):  # last layer zeroed: pi_phi = pi_theta at the start
        p[i] = 0.0
    N = state_of.shape[0]
    U = X.shape[0]
    weight = np.zeros(U)
    for i in range(N):
        weight[state_of[i]] += 1.0 / N
    C = np.zeros((U, K))
    mark = np.zeros(U, np.bool_)
    touched = np.empty(N, np.int64)
    share = np.zeros(U)  # each touched state's share of the minibatch, for the KL
    h = np.empty(width)
    d = np.empty(K)
    lp = np.empty(K)
    gk = np.empty(K)
    dh = np.empty(width)
    g = np.zeros(P)
    b1, b2, eps = 0.9, 0.999, 1e-8
    base, extra = N // chunks, N % chunks
    epochs = 0
    kl = 0.0
    live = True
    for e in range(orders.shape[0]):
        lo = 0
        for c in range(chunks):
            size = base + (1 if c < extra else 0)
            nt = 0
            for j in range(lo, lo + size):
                i = orders[e, j]
                u = state_of[i]
                if not mark[u]:
                    mark[u] = True
                    touched[nt] = u
                    nt += 1
                C[u, action_of[i]] += 1.0
                share[u] += 1.0 / size
            lo += size
            for i in range(P):
                g[i] = 0.0
            for q in range(nt):
                u = touched[q]
                _forward(p, X[u], F, H, K, h, d)
                _log_softmax(T[u], d, K, lp)
                # d loss / d Delta_k = sum_a w_a active_a r_a (1[k = a] - p_k)
                total = 0.0
                for k in range(K):
                    gk[k] = 0.0
                for a in range(K):
                    if C[u, a] > 0.0:
                        r = math.exp(lp[a] - T[u, a])
                        if r > 1.0 - clip:
                            w = C[u, a] / size * r
                            gk[a] += w
                            total += w
                        C[u, a] = 0.0
                mark[u] = False
                for k in range(K):
                    gk[k] -= total * math.exp(lp[k])
                for j in range(width):
                    s = 0.0
                    for k in range(K):
                        g[ow2 + j * K + k] += h[j] * gk[k]
                        s += p[ow2 + j * K + k] * gk[k]
                    dh[j] = s
                for k in range(K):
                    g[ob2 + k] += gk[k]
                if H > 0:
                    x = X[u]
                    for j in range(H):
                        pre = dh[j] * (1.0 - h[j] * h[j])
                        g[ob1 + j] += pre
                        for f in range(F):
                            g[f * H + j] += x[f] * pre
            if grad_clip < np.inf:
                norm = 0.0
                for i in range(P):
                    norm += g[i] * g[i]
                coef = grad_clip / (math.sqrt(norm) + 1e-6)
                if coef < 1.0:
                    for i in range(P):
                        g[i] *= coef
            if sgd:
                for i in range(P):
                    p[i] -= lr * g[i]
            else:
                t[0] += 1.0
                bc1 = 1.0 - b1 ** t[0]
                bc2 = math.sqrt(1.0 - b2 ** t[0])
                for i in range(P):
                    m[i] = b1 * m[i] + (1.0 - b1) * g[i]
                    v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i]
                    p[i] -= (lr / bc1) * m[i] / (math.sqrt(v[i]) / bc2 + eps)
            if kl_cutoff < np.inf:
                kl = mean_kl(p, X, T, share, F, H, K)
            for q in range(nt):
                share[touched[q]] = 0.0
            if kl > kl_cutoff:
                live = False
                break
        if not live:
            break
        epochs += 1
    if kl_cutoff == np.inf:  # report the buffer's KL
        kl = mean_kl(p, X, T, weight, F, H, K)
    return epochs, kl
