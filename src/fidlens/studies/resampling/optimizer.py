"""Weighted-FID objective for resampling a candidate pool, with a bounded-memory gradient.

Method (Kynkäänniemi et al., ICLR 2023, Sec. 3): every candidate feature vector f_i
(N of them, dimension d) gets a log-weight w_i. With e_i = exp(w_i) and S = sum e_i,

    mu_w    = sum e_i f_i / S
    Sigma_w = sum e_i d_i d_i^T / (S - 1),        d_i = f_i - mu_w   (frequency weights)
    L(w)    = ||mu_w - mu_r||^2 + tr Sigma_w + tr Sigma_r - 2 tr((S_r Sigma_w S_r)^{1/2})

with S_r = Sigma_r^{1/2}, and w is trained by full-batch SGD. With all w = 0 the
statistics are the ordinary mean and unbiased covariance; with e_i = k_i integer they
are those of the sample in which f_i is repeated k_i times.

Gradient (closed form, evaluated chunk by chunk)
------------------------------------------------
d mu_w / d w_i = e_i d_i / S. With C = sum_j e_j d_j d_j^T, differentiating gives
dC/dw_i = e_i d_i d_i^T: the terms from d mu_w are multiplied by sum_j e_j d_j = 0.
Hence d Sigma_w / d w_i = e_i (d_i d_i^T - Sigma_w) / (S - 1), and with g_mu = dL/d mu_w
and the symmetric G = dL/d Sigma_w (from autograd on the d x d statistics only)

    dL/dw_i = e_i [ d_i^T g_mu / S + (d_i^T G d_i - tr(G Sigma_w)) / (S - 1) ].

Scale handling
--------------
exp(w) overflows for w > 709, so nothing uses e_i or S directly. With the max-shifted
p = softmax(w) and log S = logsumexp(w) (both in float64), dividing numerator and
denominator of each formula by S gives

    mu_w    = sum p_i f_i
    Sigma_w = sum p_i d_i d_i^T / r,              r = (S - 1) / S = -expm1(-log S)
    dL/dw_i = p_i [ d_i^T g_mu + (d_i^T G d_i - tr(G Sigma_w)) / r ].

These are exact rewritings, so the "-1" of S - 1 is kept: r comes from log S through
``expm1``, which is accurate both for huge S (r -> 1) and for S just above 1 (r -> 0, no
cancellation). Only S itself may exceed the float64 range, and no formula needs it.
S <= 1 (log S <= 0) would make the covariance negative and raises ``StatisticsError``.

Factor route (what ``loss`` and ``loss_and_grad`` compute)
----------------------------------------------------------
With Sigma_r = F F^T, F = V_k diag(lam_k)^{1/2} (d x k, the k eigenvalues above rounding
noise; k <= min(d, N_r - 1)), S_r Sigma_w S_r has the non-zero eigenvalues of the k x k

    M = F^T Sigma_w F = sum p_i e_i e_i^T / r,    e_i = F^T d_i,

so tr((S_r Sigma_w S_r)^{1/2}) = sum sqrt(eig M): the route ``ReferenceStatistics.fid``
takes for the evaluation's FID. Sigma_w itself is never formed: tr Sigma_w =
sum p_i |d_i|^2 / r, and dL/d Sigma_w = G = I - F M^{-1/2} F^T (M^{-1/2} on the eigen-
directions above 1e-12 max(eig M), 0 elsewhere, as ``trace_sqrt_psd``'s backward), so

    d_i^T G d_i = |d_i|^2 - e_i^T M^{-1/2} e_i,    tr(G Sigma_w) = tr Sigma_w - sum sqrt(eig M).

Each pass projects a chunk of rows (chunk x d times d x k): a step costs O(N d k) plus a
k x k eigendecomposition, against O(N d^2 + d^3) and a d x d one for S_r Sigma_w S_r.
With the demo's 200 reals (k = 199 of d = 2048) that is 20-50 times less; with k = d it
costs no more. The values agree with the d x d route to rounding (tests: 1e-10).

Memory: the feature array stays in its own dtype and device; each pass casts one chunk
of rows to float64 (``chunk_size`` x d), and the rest is O(N) + O(d k). One loss and
gradient costs three passes: weighted mean, projected scatter, gradient. ``statistics``
still forms the d x d Sigma_w (its purpose).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fidlens.core.errors import StatisticsError
from fidlens.metrics.frechet import _psd_factor, matrix_sqrt_psd, trace_sqrt_psd

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_LR",
    "ResamplingOptimizer",
    "WeightedFrechet",
    "draw_indices",
    "naive_loss_and_grad",
    "sampling_probabilities",
]

DEFAULT_CHUNK_SIZE = 8192
DEFAULT_LR = 10.0

# math.exp overflows above log(float64 max) ~ 709.78
_LOG_FLOAT64_MAX = math.log(np.finfo(np.float64).max)


# ----------------------------------------------------------------------------- validation


def _as_tensor(x: Any, name: str) -> torch.Tensor:
    """A torch view of a tensor or array (no copy when possible)."""
    if isinstance(x, torch.Tensor):
        return x
    try:
        arr = np.asarray(x)
        with warnings.catch_warnings():
            # read-only arrays (np.load(mmap_mode="r")) are only ever read here
            warnings.filterwarnings("ignore", message=".*not writable.*")
            return torch.as_tensor(arr)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise StatisticsError(f"{name} must be a real numeric array: {exc}") from exc


def _to_numpy64(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        if x.is_complex() or x.dtype == torch.bool:
            raise StatisticsError(f"{name} must be real, got dtype {x.dtype}")
        return x.detach().to(device="cpu", dtype=torch.float64).numpy()
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise StatisticsError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def _check_features(features: Any, chunk_size: int) -> torch.Tensor:
    """2-D floating (N >= 2, d >= 1), finite; the check runs chunk by chunk (no full copy)."""
    f = _as_tensor(features, "features").detach()  # a view: no graph, no copy
    if not f.is_floating_point():
        raise StatisticsError(f"features must have a floating dtype, got {f.dtype}")
    if f.ndim != 2:
        raise StatisticsError(f"features must be 2-D (N, d), got shape {tuple(f.shape)}")
    n, d = f.shape
    if n < 2:
        raise StatisticsError(f"resampling needs at least 2 candidates, got {n}")
    if d < 1:
        raise StatisticsError(f"features have no dimensions (shape {tuple(f.shape)})")
    for start in range(0, n, chunk_size):
        if not bool(torch.isfinite(f[start : start + chunk_size]).all()):
            stop = min(start + chunk_size, n) - 1
            raise StatisticsError(f"features contain NaN or infinite values (rows {start}..{stop})")
    return f


def _check_chunk_size(chunk_size: Any) -> int:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)):
        raise StatisticsError(f"chunk_size must be an integer, got {chunk_size!r}")
    if chunk_size < 1:
        raise StatisticsError(f"chunk_size must be positive, got {chunk_size}")
    return int(chunk_size)


def _real_statistics(mu_real: Any, sigma_real: Any, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 (mu_r, symmetrised Sigma_r) matching feature dimension d."""
    mu = _to_numpy64(mu_real, "mu_real")
    sigma = _to_numpy64(sigma_real, "sigma_real")
    if mu.ndim != 1:
        raise StatisticsError(f"mu_real must be 1-D (d,), got shape {mu.shape}")
    if sigma.ndim != 2 or sigma.shape[0] != sigma.shape[1]:
        raise StatisticsError(f"sigma_real must be square (d, d), got shape {sigma.shape}")
    if mu.shape[0] != d or sigma.shape[0] != d:
        raise StatisticsError(
            f"dimension mismatch: features have d={d}, real statistics have "
            f"mu {mu.shape} and sigma {sigma.shape}"
        )
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise StatisticsError("real statistics contain NaN or infinite values")
    return mu, 0.5 * (sigma + sigma.T)


def _check_log_weights(w: Any, n: int | None = None) -> torch.Tensor:
    """A detached float64 1-D tensor; NaN and +inf are refused, -inf (weight 0) is allowed."""
    t = _as_tensor(w, "w")
    if not (t.is_floating_point() or t.dtype in (torch.int16, torch.int32, torch.int64)):
        raise StatisticsError(f"w must be real, got dtype {t.dtype}")
    if t.ndim != 1:
        raise StatisticsError(f"w must be 1-D, got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise StatisticsError("w is empty")
    if n is not None and t.numel() != n:
        raise StatisticsError(f"w has {t.numel()} entries but there are {n} candidates")
    t = t.detach().to(torch.float64)
    if bool(torch.isnan(t).any()) or bool(torch.isposinf(t).any()):
        raise StatisticsError("w contains NaN or +inf")
    if bool(torch.isneginf(t).all()):
        raise StatisticsError("all weights are zero (every w is -inf)")
    return t


# ----------------------------------------------------------------------------- objective


_EPS = float(np.finfo(np.float64).eps)
_REL_EIG_TOL = 1e-12  # gradient directions of M below this fraction of its largest eigenvalue get 0


@dataclass
class _Projected:
    p: torch.Tensor  # softmax(w), float64 (N,)
    ratio: float  # r = (S - 1) / S
    mu: torch.Tensor  # (d,)
    m: torch.Tensor  # (k, k) = F^T Sigma_w F, symmetric
    trace_sigma: float  # tr Sigma_w


@dataclass
class _Weighted:
    p: torch.Tensor  # softmax(w), float64 (N,)
    log_total: float  # log S = logsumexp(w)
    ratio: float  # r = (S - 1) / S
    mu: torch.Tensor  # (d,)
    sigma: torch.Tensor  # (d, d), symmetric


class WeightedFrechet:
    """FID between the exp(w)-weighted candidate pool and fixed real statistics.

    ``features`` (N, d) is kept as given (any floating dtype, any device, never copied
    whole); every pass casts ``chunk_size`` rows at a time to float64. The real
    statistics are converted to float64 on the features' device, and the factor F of
    Sigma_r (F F^T = Sigma_r) is computed once, or taken from ``real_factor`` when the
    caller has it. See the module docstring for the formulas and the scale handling.
    """

    def __init__(
        self,
        features: Any,
        mu_real: Any,
        sigma_real: Any,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        real_factor: Any = None,
    ) -> None:
        self.chunk_size = _check_chunk_size(chunk_size)
        self.features = _check_features(features, self.chunk_size)
        self.num_candidates, self.dim = (int(s) for s in self.features.shape)
        self.device = self.features.device
        mu_r, sigma_r = _real_statistics(mu_real, sigma_real, self.dim)
        as_dev = lambda a: torch.as_tensor(a, dtype=torch.float64).to(self.device)
        self.mu_real = as_dev(mu_r)
        if real_factor is None:
            real_factor = _psd_factor(sigma_r, "sigma_real")
        else:  # the caller's F with F F^T = Sigma_r (ReferenceStatistics has it): skips a d x d eigh
            real_factor = _to_numpy64(real_factor, "real_factor")
            if real_factor.ndim != 2 or real_factor.shape[0] != self.dim:
                raise StatisticsError(
                    f"real_factor has shape {real_factor.shape}, expected ({self.dim}, k)"
                )
        self.real_factor = as_dev(real_factor)
        self.trace_sigma_real = float(np.trace(sigma_r))

    def __repr__(self) -> str:
        return (
            f"WeightedFrechet(N={self.num_candidates}, d={self.dim}, "
            f"dtype={self.features.dtype}, device={self.device}, chunk_size={self.chunk_size})"
        )

    # -- chunked passes ---------------------------------------------------------------------

    def _chunks(self) -> range:
        return range(0, self.num_candidates, self.chunk_size)

    def _weights_and_mean(self, w: Any) -> tuple[torch.Tensor, float, float, torch.Tensor]:
        """(p, log S, r, mu_w): softmax weights, their scale, and the weighted mean (one pass)."""
        w64 = _check_log_weights(w, self.num_candidates).to(self.device)
        log_total = float(torch.logsumexp(w64, 0))
        if not log_total > 0.0:
            raise StatisticsError(
                f"total weight S = sum exp(w) = exp({log_total:.6g}) must exceed 1 "
                "for the frequency-weighted covariance (divides by S - 1)"
            )
        ratio = -math.expm1(-log_total)
        p = torch.softmax(w64, 0)
        mu = torch.zeros(self.dim, dtype=torch.float64, device=self.device)
        for start in self._chunks():
            stop = start + self.chunk_size
            mu += p[start:stop] @ self.features[start:stop].to(torch.float64)
        return p, log_total, ratio, mu

    def _projected(self, w: Any) -> _Projected:
        """M = F^T Sigma_w F and tr Sigma_w, without forming Sigma_w (see the module docstring)."""
        p, _, ratio, mu = self._weights_and_mean(w)
        k = self.real_factor.shape[1]
        scatter = torch.zeros(k, k, dtype=torch.float64, device=self.device)
        trace = torch.zeros((), dtype=torch.float64, device=self.device)
        for start in self._chunks():
            stop = start + self.chunk_size
            delta = self.features[start:stop] - mu  # promotes to a fresh float64 chunk
            root_p = p[start:stop].sqrt()
            e = (delta @ self.real_factor).mul_(root_p.unsqueeze(1))
            scatter.addmm_(e.T, e)
            trace += p[start:stop] @ delta.square().sum(dim=1)
        m = scatter.div_(ratio)
        return _Projected(p=p, ratio=ratio, mu=mu, m=0.5 * (m + m.T), trace_sigma=float(trace) / ratio)

    def _trace_sqrt(self, m: torch.Tensor, *, with_inverse: bool) -> tuple[float, torch.Tensor | None]:
        """(sum sqrt(eig M), M^{-1/2} or None): noise eigenvalues dropped like frechet's numpy route."""
        if m.shape[0] == 0:  # Sigma_r = 0: no directions to match
            return 0.0, m.clone() if with_inverse else None
        if not with_inverse:
            lam = torch.linalg.eigvalsh(m)
        else:
            lam, vec = torch.linalg.eigh(m)
        top = float(lam.max())
        kept = torch.where(lam > max(top, 0.0) * lam.numel() * _EPS, lam, torch.zeros_like(lam))
        value = float(kept.sqrt().sum())
        if not with_inverse:
            return value, None
        keep = lam > max(top, 0.0) * max(_REL_EIG_TOL, lam.numel() * _EPS)  # M = 0: no direction
        inv_root = torch.where(keep, 1.0 / lam.clamp(min=1e-300).sqrt(), torch.zeros_like(lam))
        return value, (vec * inv_root) @ vec.T

    def _weighted(self, w: Any) -> _Weighted:
        p, log_total, ratio, mu = self._weights_and_mean(w)

        # centred two-pass scatter: sum p_i d_i d_i^T as (sqrt(p) d)^T (sqrt(p) d)
        scatter = torch.zeros(self.dim, self.dim, dtype=torch.float64, device=self.device)
        for start in self._chunks():
            stop = start + self.chunk_size
            delta = self.features[start:stop] - mu  # promotes to a fresh float64 chunk
            delta.mul_(p[start:stop].sqrt().unsqueeze(1))
            scatter.addmm_(delta.T, delta)
        del delta
        sigma = scatter.div_(ratio)
        sigma = 0.5 * (sigma + sigma.T)
        return _Weighted(p=p, log_total=log_total, ratio=ratio, mu=mu, sigma=sigma)

    def _value(self, st: _Projected, trace_sqrt: float) -> float:
        diff = st.mu - self.mu_real
        return float(diff @ diff) + st.trace_sigma + self.trace_sigma_real - 2.0 * trace_sqrt

    # -- public API --------------------------------------------------------------------------

    def statistics(self, w: Any) -> tuple[torch.Tensor, torch.Tensor, float]:
        """(mu_w (d,), Sigma_w (d, d), S) in float64 on the features' device; not differentiable.

        S = sum exp(w) as a Python float: ``inf`` when log S > 709.78 (outside float64);
        the statistics themselves only use log S and are exact for any S > 1.
        """
        st = self._weighted(w)
        total = math.exp(st.log_total) if st.log_total < _LOG_FLOAT64_MAX else math.inf
        return st.mu, st.sigma, total

    def log_total_weight(self, w: Any) -> float:
        """log S = logsumexp(w), finite even where S overflows."""
        return float(torch.logsumexp(_check_log_weights(w, self.num_candidates), 0))

    def loss(self, w: Any) -> float:
        """L(w) = FID(mu_w, Sigma_w; mu_r, Sigma_r) in float64 (not clipped at 0)."""
        with torch.no_grad():
            st = self._projected(w)
            return self._value(st, self._trace_sqrt(st.m, with_inverse=False)[0])

    def loss_and_grad(self, w: Any) -> tuple[float, torch.Tensor]:
        """(L(w), dL/dw): the gradient in float64 on w's device, by the closed form per chunk."""
        out_device = w.device if isinstance(w, torch.Tensor) else torch.device("cpu")
        with torch.no_grad():
            st = self._projected(w)
            trace_sqrt, inv_root = self._trace_sqrt(st.m, with_inverse=True)
            value = self._value(st, trace_sqrt)
            g_mu = 2.0 * (st.mu - self.mu_real)
            tr_g_sigma = st.trace_sigma - trace_sqrt  # tr(G Sigma_w), G = I - F M^{-1/2} F^T
            grad = torch.empty(self.num_candidates, dtype=torch.float64, device=self.device)
            for start in self._chunks():
                stop = start + self.chunk_size
                delta = self.features[start:stop] - st.mu  # fresh float64 chunk
                e = delta @ self.real_factor
                quad = delta.square().sum(dim=1) - (e @ inv_root).mul_(e).sum(dim=1)  # d_i^T G d_i
                grad[start:stop] = st.p[start:stop] * (delta @ g_mu + (quad - tr_g_sigma) / st.ratio)
        return value, grad.to(out_device)


# ----------------------------------------------------------------------------- optimiser


def _check_lr(lr: Any) -> float:
    try:
        value = float(lr)
    except (TypeError, ValueError) as exc:
        raise StatisticsError(f"lr must be a number, got {lr!r}") from exc
    if not (math.isfinite(value) and value > 0.0):
        raise StatisticsError(f"lr must be positive and finite, got {lr!r}")
    return value


class ResamplingOptimizer:
    """Plain full-batch SGD on the log-weights: w <- w - lr * dL/dw.

    ``w`` (float64, on the objective's device) starts at 0 (uniform weights). The whole
    state is (w, iteration, lr), so ``state_dict`` / ``load_state_dict`` resume a run
    bit-identically on the same device.
    """

    def __init__(self, objective: WeightedFrechet, *, lr: float = DEFAULT_LR) -> None:
        self.objective = objective
        self.lr = _check_lr(lr)
        self.w = torch.zeros(objective.num_candidates, dtype=torch.float64, device=objective.device)
        self.iteration = 0

    @classmethod
    def from_features(
        cls,
        features: Any,
        mu_real: Any,
        sigma_real: Any,
        *,
        lr: float = DEFAULT_LR,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> ResamplingOptimizer:
        return cls(WeightedFrechet(features, mu_real, sigma_real, chunk_size=chunk_size), lr=lr)

    def step(self) -> float:
        """One SGD step; returns the loss at the weights *before* the update."""
        value, grad = self.objective.loss_and_grad(self.w)
        self.w.sub_(grad, alpha=self.lr)
        self.iteration += 1
        return value

    def loss(self) -> float:
        """The loss at the current weights."""
        return self.objective.loss(self.w)

    def probabilities(self) -> torch.Tensor:
        """softmax(w): the sampling probability of every candidate."""
        return sampling_probabilities(self.w)

    def state_dict(self) -> dict[str, Any]:
        return {"w": self.w.detach().cpu().clone(), "iteration": self.iteration, "lr": self.lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = {"w", "iteration", "lr"} - set(state)
        if missing:
            raise StatisticsError(f"optimizer state lacks {sorted(missing)}")
        w = state["w"]
        if not isinstance(w, torch.Tensor) or w.dtype != torch.float64:
            raise StatisticsError("optimizer state 'w' must be a float64 tensor")
        if tuple(w.shape) != (self.objective.num_candidates,):
            raise StatisticsError(
                f"optimizer state has {tuple(w.shape)} weights, the pool has "
                f"{self.objective.num_candidates} candidates"
            )
        if bool(torch.isnan(w).any()):
            raise StatisticsError("optimizer state 'w' contains NaN")
        iteration = state["iteration"]
        if (
            isinstance(iteration, bool)
            or not isinstance(iteration, (int, np.integer))
            or iteration < 0
        ):
            raise StatisticsError(
                f"optimizer state 'iteration' must be a non-negative int, got {iteration!r}"
            )
        self.lr = _check_lr(state["lr"])
        self.w = w.detach().to(self.objective.device).clone()
        self.iteration = int(iteration)


# ----------------------------------------------------------------------------- sampling


def sampling_probabilities(w: Any) -> torch.Tensor:
    """softmax(w) in float64 (max-shifted, so any finite w is safe), on w's device."""
    return torch.softmax(_check_log_weights(w), 0)


def draw_indices(w: Any, m: int, seed: Any) -> np.ndarray:
    """m candidate indices drawn with replacement with p = softmax(w), reproducibly.

    ``np.random.default_rng(seed).choice(N, size=m, replace=True, p=p)`` on the float64
    probabilities divided by their sum (numpy's inverse-CDF sampling). ``seed`` is
    anything ``default_rng`` accepts except None.
    """
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 0:
        raise StatisticsError(f"m must be a non-negative integer, got {m!r}")
    if seed is None:
        raise StatisticsError("draw_indices needs a seed (None would not be reproducible)")
    p = sampling_probabilities(w).cpu().numpy()
    p = p / p.sum()
    try:
        rng = np.random.default_rng(seed)
    except (TypeError, ValueError) as exc:
        raise StatisticsError(f"invalid seed {seed!r}: {exc}") from exc
    return rng.choice(p.size, size=int(m), replace=True, p=p)


# ----------------------------------------------------------------------------- reference


def naive_loss_and_grad(
    features: Any,
    w: Any,
    mu_real: Any,
    sigma_real: Any,
    *,
    sqrt_sigma_real: Any = None,
) -> tuple[float, torch.Tensor]:
    """Reference: full-batch float64 autograd over the whole pool (what the paper's code does).

    Converts all features to float64 at once and keeps the N x d intermediates for the
    backward pass (3 N d float64 arrays; about 6.5 N d at the backward's peak), and uses
    exp(w) without a shift, so it overflows for w > 709. Only for tests and benchmarks.
    ``sqrt_sigma_real`` (Sigma_r^{1/2}) may be passed precomputed, so that timing
    comparisons do not charge the naive path a d x d ``eigh`` per call.
    """
    f = _as_tensor(features, "features")
    if not f.is_floating_point() or f.ndim != 2 or f.shape[0] < 2:
        raise StatisticsError(f"features must be floating (N >= 2, d), got {tuple(f.shape)}")
    mu_r, sigma_r = _real_statistics(mu_real, sigma_real, int(f.shape[1]))
    device = f.device
    f64 = f.to(torch.float64)
    w64 = _check_log_weights(w, int(f.shape[0])).to(device).clone().requires_grad_(True)
    mu_real_t = torch.as_tensor(mu_r).to(device)
    if sqrt_sigma_real is None:
        sqrt_sigma_real = matrix_sqrt_psd(sigma_r)
    sqrt_r = torch.as_tensor(_to_numpy64(sqrt_sigma_real, "sqrt_sigma_real")).to(device)
    if sqrt_r.shape != (f.shape[1], f.shape[1]):
        raise StatisticsError(f"sqrt_sigma_real has shape {tuple(sqrt_r.shape)}, expected d x d")

    with torch.enable_grad():
        e = torch.exp(w64)
        total = e.sum()
        mu = (e[:, None] * f64).sum(dim=0) / total
        delta = f64 - mu
        sigma = (delta * e[:, None]).T @ delta / (total - 1.0)
        m = sqrt_r @ sigma @ sqrt_r
        m = 0.5 * (m + m.T)
        diff = mu - mu_real_t
        value = (
            diff @ diff + torch.trace(sigma) + float(np.trace(sigma_r)) - 2.0 * trace_sqrt_psd(m)
        )
        (grad,) = torch.autograd.grad(value, (w64,))
    out_device = w.device if isinstance(w, torch.Tensor) else torch.device("cpu")
    return float(value.detach()), grad.to(out_device)
