"""Numba kernels of the guided filter. No validation, no I/O, no image-sized allocation.

Layout of one band (rows ``y0..y1-1`` of the output):

* stage 1 keeps, for every column, float64 running sums over the rows of the window of the *leading* row
  ``t`` of I, p, I·p and I² (13 products for a colour guide); a horizontal running sum along the padded
  row then gives the window sums, from which the coefficients (a, b) of row ``t`` are computed and stored
  in a ring buffer of 2r+2 rows (float32, or float64 for ε < 1e-6: |a| ≤ 1/(4√ε) for data in [0, 1], and
  float32 keeps it to |a|·2⁻²⁴; the wrapper picks the dtype, the kernels follow it; docs/filters.md §5),
  plus one slot of zeros that stands for "no row" beyond the image's border (one update path for every
  row: fewer functions to compile on a first run);
* stage 2 keeps float64 running column sums of (a, b) over the ring, and a horizontal running sum gives
  ā, b̄ and ``q = ā·I + b̄`` (or, for the fast variant, writes ā and b̄ at low resolution).

Both stages read each input row once per band; bands overlap by 2r rows of stage 1 (recomputed), so
bands are independent and each writes only its own output rows. The entry points are serial, cached and
release the GIL; :mod:`maskrefine.filters.guided` runs bands (one image) or image ranges (a batch) on a
thread pool and allocates each band's row-sized scratch. (``prange`` was tried first: with numba's default
GNU OpenMP layer, spinning workers cost a constant ~12 ms per call on a loaded 2-core machine, 10x the
work of a 256² image; threads do not.) Helpers are built with ``njit_inner`` (no Python entry point: less
to compile on a first run). Even the two-line index helpers are separate functions rather than
``inline="always"``: numba inlines such a function by compiling its IR again at every call site (0.2 s
of the colour kernel's own compile, which nothing can share), while LLVM inlines a small separate
function into its caller anyway, at no cost to the run time.

Running sums are float64 (products of two float32 values are exact in float64): the maximum error
against the float64 oracle stays ~1e-7 at 4096², where a float32 cumsum reaches 4.5e-5 (peer note 7 in
bench/README.md).
Kernels use ``error_model="numpy"``: a division has no ZeroDivisionError branch, so the per-pixel
coefficient loops vectorize (~3x faster); the denominators are >= eps > 0 anyway. No fastmath.

Borders: ``reflect=False`` is the truncated window divided by its true pixel count; ``reflect=True`` is
OpenCV ``BORDER_REFLECT`` divided by (2r+1)² (valid when the size is >= r + 1, guaranteed by the wrapper).
The fast variant reads the full-resolution inputs with a stride ``step`` (nearest subsampling, phase 0).
"""

from __future__ import annotations

import numpy as np

from maskrefine._jit import njit, njit_inner

__all__ = [
    "all_finite",
    "gray_rows",
    "color_rows",
    "gray_images",
    "color_images",
    "upsample_rows",
    "upsample_images",
]


@njit(cache=True, nogil=True, error_model="numpy")
def all_finite(bits, mask):
    """Return True when no element is NaN or ±inf.

    ``bits`` is the 1-D float array viewed as unsigned integers, ``mask`` its exponent mask (all exponent
    bits set = NaN/inf, i.e. ``max(bits & mask) == mask``). An integer max over fixed-size blocks:
    vectorized (~3x faster than a counted compare), no temporary, stops after the first block with a bad
    element.
    """
    n = bits.shape[0]
    block = 16384
    nb = n // block
    zero = bits.dtype.type(0)
    for b in range(nb):
        m = zero
        base = b * block
        for j in range(block):
            m = max(m, bits[base + j] & mask)
        if m == mask:
            return False
    m = zero
    for j in range(nb * block, n):
        m = max(m, bits[j] & mask)
    return m != mask


@njit_inner(cache=True, error_model="numpy")
def _refl(i, n):
    """OpenCV BORDER_REFLECT index for -n <= i < 2n."""
    if i < 0:
        return -i - 1
    if i >= n:
        return 2 * n - 1 - i
    return i


@njit_inner(cache=True, error_model="numpy")
def _reset(cs1, cs2, zero_slot, inv_x, n, r, reflect):
    """Zero the column sums of both stages and the ring's zero slot; inv_x = 1 / (window pixels along x)."""
    for q in range(cs1.shape[0]):
        c = cs1[q]
        for x in range(c.shape[0]):
            c[x] = 0.0
    for q in range(cs2.shape[0]):
        c = cs2[q]
        for x in range(c.shape[0]):
            c[x] = 0.0
    for q in range(zero_slot.shape[0]):
        z = zero_slot[q]
        for x in range(z.shape[0]):
            z[x] = 0.0
    for x in range(n):
        if reflect:
            inv_x[x] = 1.0 / (2 * r + 1)
        else:
            lo = x - r if x > r else 0
            hi = x + r if x + r < n else n - 1
            inv_x[x] = 1.0 / (hi - lo + 1)


@njit_inner(cache=True, error_model="numpy")
def _inv_count_row(t, n, r, reflect):
    if reflect:
        return 1.0 / (2 * r + 1)
    lo = t - r if t > r else 0
    hi = t + r if t + r < n else n - 1
    return 1.0 / (hi - lo + 1)


@njit_inner(cache=True, error_model="numpy")
def _pad_row(cs, w, r, reflect):
    """Fill the r-wide left/right pads of the column-sum rows: zeros (truncated) or reflected columns."""
    k = cs.shape[0]
    for q in range(k):
        for j in range(r):
            if reflect:
                cs[q, j] = cs[q, r + r - j - 1]
                cs[q, r + w + j] = cs[q, r + w - 1 - j]
            else:
                cs[q, j] = 0.0
                cs[q, r + w + j] = 0.0


# ----------------------------------------------------------------------------------------------- gray
@njit_inner(cache=True, error_model="numpy")
def _gray_rows_add(I, p, row, step, w, r, sgn, cs):
    """cs[:, r:r+w] += sgn * (I, p, I·p, I²) of (low-res) row ``row``."""
    yy = row * step
    c0 = cs[0]
    c1 = cs[1]
    c2 = cs[2]
    c3 = cs[3]
    for x in range(w):
        i = np.float64(I[yy, x * step])
        v = np.float64(p[yy, x * step])
        c0[r + x] += sgn * i
        c1[r + x] += sgn * v
        c2[r + x] += sgn * (i * v)
        c3[r + x] += sgn * (i * i)


@njit_inner(cache=True, error_model="numpy")
def _hsums4(cs, w, r, hs):
    """Set hs[q, x] = sum of cs[q, x : x + 2r + 1] for the 4 rows q.

    These are the horizontal running window sums of the padded rows, all running sums in one loop
    (independent add chains).
    """
    c0 = cs[0]
    c1 = cs[1]
    c2 = cs[2]
    c3 = cs[3]
    o0 = hs[0]
    o1 = hs[1]
    o2 = hs[2]
    o3 = hs[3]
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    for j in range(2 * r + 1):
        a0 += c0[j]
        a1 += c1[j]
        a2 += c2[j]
        a3 += c3[j]
    o0[0] = a0
    o1[0] = a1
    o2[0] = a2
    o3[0] = a3
    k = 2 * r
    for x in range(1, w):
        a0 += c0[x + k] - c0[x - 1]
        a1 += c1[x + k] - c1[x - 1]
        a2 += c2[x + k] - c2[x - 1]
        a3 += c3[x + k] - c3[x - 1]
        o0[x] = a0
        o1[x] = a1
        o2[x] = a2
        o3[x] = a3


@njit_inner(cache=True, error_model="numpy")
def _hsums5(cs, w, r, hs):
    """:func:`_hsums4` for exactly 5 rows in one loop (a lone fifth chain would be latency-bound)."""
    c0 = cs[0]
    c1 = cs[1]
    c2 = cs[2]
    c3 = cs[3]
    c4 = cs[4]
    o0 = hs[0]
    o1 = hs[1]
    o2 = hs[2]
    o3 = hs[3]
    o4 = hs[4]
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    a4 = 0.0
    for j in range(2 * r + 1):
        a0 += c0[j]
        a1 += c1[j]
        a2 += c2[j]
        a3 += c3[j]
        a4 += c4[j]
    o0[0] = a0
    o1[0] = a1
    o2[0] = a2
    o3[0] = a3
    o4[0] = a4
    k = 2 * r
    for x in range(1, w):
        a0 += c0[x + k] - c0[x - 1]
        a1 += c1[x + k] - c1[x - 1]
        a2 += c2[x + k] - c2[x - 1]
        a3 += c3[x + k] - c3[x - 1]
        a4 += c4[x + k] - c4[x - 1]
        o0[x] = a0
        o1[x] = a1
        o2[x] = a2
        o3[x] = a3
        o4[x] = a4


@njit_inner(cache=True, error_model="numpy")
def _hsums2(cs, w, r, hs):
    """:func:`_hsums4` for exactly 2 rows in one loop (two independent add chains)."""
    c0 = cs[0]
    c1 = cs[1]
    o0 = hs[0]
    o1 = hs[1]
    a0 = 0.0
    a1 = 0.0
    for j in range(2 * r + 1):
        a0 += c0[j]
        a1 += c1[j]
    o0[0] = a0
    o1[0] = a1
    k = 2 * r
    for x in range(1, w):
        a0 += c0[x + k] - c0[x - 1]
        a1 += c1[x + k] - c1[x - 1]
        o0[x] = a0
        o1[x] = a1


@njit_inner(cache=True, error_model="numpy")
def _gray_out_row(cs, w, r, inv_x, inv_y, g, o):
    """Compute one output row ``o = (ā·I + b̄)``.

    The horizontal running sums of the stage-2 column sums are fused with the output (two add chains; no
    store and reload of the window sums).
    """
    c0 = cs[0]
    c1 = cs[1]
    a0 = 0.0
    a1 = 0.0
    for j in range(2 * r):
        a0 += c0[j]
        a1 += c1[j]
    k = 2 * r
    a0 += c0[k]
    a1 += c1[k]
    o[0] = (a0 * np.float64(g[0]) + a1) * (inv_x[0] * inv_y)
    for x in range(1, w):
        a0 += c0[x + k] - c0[x - 1]
        a1 += c1[x + k] - c1[x - 1]
        o[x] = (a0 * np.float64(g[x]) + a1) * (inv_x[x] * inv_y)


@njit_inner(cache=True, error_model="numpy")
def _gray_coeffs_row(cs, hs, inv_x, inv_y, eps, w, r, ra, rb):
    """Window sums of (I, p, I·p, I²) -> a, b of one row into ra, rb (the math loop vectorizes)."""
    _hsums4(cs, w, r, hs)
    h0 = hs[0]
    h1 = hs[1]
    h2 = hs[2]
    h3 = hs[3]
    for x in range(w):
        f = inv_x[x] * inv_y
        mi = h0[x] * f
        mp = h1[x] * f
        var = h3[x] * f - mi * mi
        cov = h2[x] * f - mi * mp
        a = cov / (var + eps)
        ra[x] = a
        rb[x] = mp - a * mi


@njit_inner(cache=True, error_model="numpy")
def _ring_update(ring, slot_new, slot_old, w, r, cs):
    """cs[q, r:r+w] += ring[slot_new, q] − ring[slot_old, q] for every coefficient plane q.

    "No row" is the ring's last slot, which holds zeros (:func:`_reset`): adding ``x − 0`` or ``0 − x`` gives
    the same float64 values as adding ``x`` or ``−x``.
    """
    k = cs.shape[0]
    for q in range(k):
        c = cs[q, r : r + w]
        rn = ring[slot_new, q]
        ro = ring[slot_old, q]
        for x in range(w):
            c[x] += np.float64(rn[x]) - np.float64(ro[x])


@njit(cache=True, nogil=True, error_model="numpy")
def gray_rows(I, p, out, coef, step, h, w, r, eps, reflect, y0, y1, write_coef, scratch):
    """Gray guided filter on output rows y0..y1-1 of an (h, w) (possibly strided) problem (a row band).

    ``scratch`` is ``(cs1, cs2, hs, ring, inv_x)`` as made by :func:`maskrefine.filters.guided`'s
    ``_scratch`` for (w, r) and 2 coefficients: float64 (4, w+2r), (2, w+2r), (4, w), float32 or float64
    (2r+3, 2, w) (the coefficients' dtype), float64 (w); any contents (the kernel zeroes what it sums into
    and the ring's last slot, which stands for "no row").
    """
    cs1, cs2, hs, ring, inv_x = scratch
    k = ring.shape[0] - 1  # 2r+2 slots (rows y-r-1 and y+r are both needed at row y), then a zero slot
    _reset(cs1, cs2, ring[k], inv_x, w, r, reflect)
    # stage 1 state: column sums for the window of leading row t
    t = y0 - r if y0 > r else 0
    for j in range(t - r, t + r + 1):
        if reflect:
            _gray_rows_add(I, p, _refl(j, h), step, w, r, 1.0, cs1)
        elif 0 <= j < h:
            _gray_rows_add(I, p, j, step, w, r, 1.0, cs1)
    # compute coefficient rows t .. min(h-1, y0+r)
    t_init = y0 + r if y0 + r < h else h - 1
    while True:
        _pad_row(cs1, w, r, reflect)
        slot = t % k
        _gray_coeffs_row(
            cs1, hs, inv_x, _inv_count_row(t, h, r, reflect), eps, w, r, ring[slot, 0], ring[slot, 1]
        )
        if t >= t_init:
            break
        # advance stage 1 to t + 1
        _advance_gray(I, p, cs1, t, step, h, w, r, reflect)
        t += 1
    # stage 2 initial window for output row y0
    for j in range(y0 - r, y0 + r + 1):
        if reflect:
            _ring_update(ring, _refl(j, h) % k, k, w, r, cs2)
        elif 0 <= j < h:
            _ring_update(ring, j % k, k, w, r, cs2)
    for y in range(y0, y1):
        if y > y0:
            # bring coefficient row y+r into the ring, then move the window from row y-1 to row y
            jo = y - r - 1
            jn = y + r
            if jn < h and jn > t:
                _advance_gray(I, p, cs1, t, step, h, w, r, reflect)
                t += 1
                _pad_row(cs1, w, r, reflect)
                slot = t % k
                _gray_coeffs_row(
                    cs1, hs, inv_x, _inv_count_row(t, h, r, reflect), eps, w, r, ring[slot, 0], ring[slot, 1]
                )
            if reflect:
                _ring_update(ring, _refl(jn, h) % k, _refl(jo, h) % k, w, r, cs2)
            else:
                _ring_update(ring, jn % k if jn < h else k, jo % k if jo >= 0 else k, w, r, cs2)
        _pad_row(cs2, w, r, reflect)
        inv_y = _inv_count_row(y, h, r, reflect)
        if not write_coef:
            _gray_out_row(cs2, w, r, inv_x, inv_y, I[y], out[y])
            continue
        _hsums2(cs2, w, r, hs)  # hs rows 0..1 reused: stage 1 of this row is done
        h0 = hs[0]
        h1 = hs[1]
        for x in range(w):
            f = inv_x[x] * inv_y
            coef[y, x, 0] = h0[x] * f
            coef[y, x, 1] = h1[x] * f


@njit_inner(cache=True, error_model="numpy")
def _sliding_rows(t, h, r, reflect):
    """(entering, leaving) row when the window's centre moves from row t to t+1; -1 (or < 0): none."""
    jo = t - r
    jn = t + r + 1
    if reflect:
        return _refl(jn, h), _refl(jo, h)
    return (jn if jn < h else -1), jo


@njit_inner(cache=True, error_model="numpy")
def _advance_gray(I, p, cs, t, step, h, w, r, reflect):
    """Move the stage-1 gray column sums from the window of row t to that of row t+1.

    cs += products of the entering row jn − products of the leaving row jo (none when off the image).
    """
    jn, jo = _sliding_rows(t, h, r, reflect)
    if step != 1 or jn < 0 or jo < 0:
        if jo >= 0:
            _gray_rows_add(I, p, jo, step, w, r, -1.0, cs)
        if jn >= 0:
            _gray_rows_add(I, p, jn, step, w, r, 1.0, cs)
        return
    i_new = I[jn]
    p_new = p[jn]
    i_old = I[jo]
    p_old = p[jo]
    c0 = cs[0, r : r + w]
    c1 = cs[1, r : r + w]
    c2 = cs[2, r : r + w]
    c3 = cs[3, r : r + w]
    for x in range(w):
        i1 = np.float64(i_new[x])
        v1 = np.float64(p_new[x])
        i0 = np.float64(i_old[x])
        v0 = np.float64(p_old[x])
        # products of two float32 values are exact in float64
        c0[x] += i1 - i0
        c1[x] += v1 - v0
        c2[x] += i1 * v1 - i0 * v0
        c3[x] += i1 * i1 - i0 * i0


@njit_inner(cache=True, error_model="numpy")
def _advance_color(I, p, cs, t, step, h, w, r, reflect):
    """Move the stage-1 colour column sums from the window of row t to that of row t+1.

    cs += the 13 products of the entering row jn − those of the leaving row jo (none when off the image).
    """
    jn, jo = _sliding_rows(t, h, r, reflect)
    if step != 1 or jn < 0 or jo < 0:
        if jo >= 0:
            _color_rows_add(I, p, jo, step, w, r, -1.0, cs)
        if jn >= 0:
            _color_rows_add(I, p, jn, step, w, r, 1.0, cs)
        return
    g_new = I[jn]
    p_new = p[jn]
    g_old = I[jo]
    p_old = p[jo]
    for x in range(w):
        r1 = np.float64(g_new[x, 0])
        g1 = np.float64(g_new[x, 1])
        b1 = np.float64(g_new[x, 2])
        v1 = np.float64(p_new[x])
        r0 = np.float64(g_old[x, 0])
        g0 = np.float64(g_old[x, 1])
        b0 = np.float64(g_old[x, 2])
        v0 = np.float64(p_old[x])
        j = r + x
        cs[0, j] += r1 - r0
        cs[1, j] += g1 - g0
        cs[2, j] += b1 - b0
        cs[3, j] += v1 - v0
        cs[4, j] += r1 * r1 - r0 * r0
        cs[5, j] += r1 * g1 - r0 * g0
        cs[6, j] += r1 * b1 - r0 * b0
        cs[7, j] += g1 * g1 - g0 * g0
        cs[8, j] += g1 * b1 - g0 * b0
        cs[9, j] += b1 * b1 - b0 * b0
        cs[10, j] += r1 * v1 - r0 * v0
        cs[11, j] += g1 * v1 - g0 * v0
        cs[12, j] += b1 * v1 - b0 * v0


# --------------------------------------------------------------------------------------------- colour
@njit_inner(cache=True, error_model="numpy")
def _color_rows_add(I, p, row, step, w, r, sgn, cs):
    """cs[:, r:r+w] += sgn * (R, G, B, p, RR, RG, RB, GG, GB, BB, Rp, Gp, Bp) of row ``row``."""
    yy = row * step
    for x in range(w):
        xx = x * step
        cr = np.float64(I[yy, xx, 0])
        cg = np.float64(I[yy, xx, 1])
        cb = np.float64(I[yy, xx, 2])
        v = np.float64(p[yy, xx])
        j = r + x
        cs[0, j] += sgn * cr
        cs[1, j] += sgn * cg
        cs[2, j] += sgn * cb
        cs[3, j] += sgn * v
        cs[4, j] += sgn * (cr * cr)
        cs[5, j] += sgn * (cr * cg)
        cs[6, j] += sgn * (cr * cb)
        cs[7, j] += sgn * (cg * cg)
        cs[8, j] += sgn * (cg * cb)
        cs[9, j] += sgn * (cb * cb)
        cs[10, j] += sgn * (cr * v)
        cs[11, j] += sgn * (cg * v)
        cs[12, j] += sgn * (cb * v)


@njit_inner(cache=True, error_model="numpy")
def _color_coeffs_row(cs, hs, inv_x, inv_y, eps, w, r, ring, slot):
    """Window sums of the 13 products -> (a_r, a_g, a_b, b) of one row into the ring."""
    # four independent add chains per loop: enough parallelism without spilling registers
    _hsums4(cs[0:4], w, r, hs[0:4])
    _hsums4(cs[4:8], w, r, hs[4:8])
    _hsums5(cs[8:13], w, r, hs[8:13])
    _color_math(
        hs[0],
        hs[1],
        hs[2],
        hs[3],
        hs[4],
        hs[5],
        hs[6],
        hs[7],
        hs[8],
        hs[9],
        hs[10],
        hs[11],
        hs[12],
        inv_x,
        inv_y,
        eps,
        w,
        ring[slot, 0],
        ring[slot, 1],
        ring[slot, 2],
        ring[slot, 3],
    )


@njit_inner(cache=True, error_model="numpy")
def _color_math(h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, inv_x, inv_y, eps, w, o0, o1, o2, o3):
    """Per-pixel colour coefficients from window sums (1-D arrays only, so the loop can vectorize)."""
    for x in range(w):
        f = inv_x[x] * inv_y
        mr = h0[x] * f
        mg = h1[x] * f
        mb = h2[x] * f
        mp = h3[x] * f
        # Σ + εU (symmetric); the variances' rounding can make Σ's diagonal slightly negative: clamp at 0
        srr = max(h4[x] * f - mr * mr, 0.0) + eps
        srg = h5[x] * f - mr * mg
        srb = h6[x] * f - mr * mb
        sgg = h7[x] * f - mg * mg + eps
        sgb = h8[x] * f - mg * mb
        sbb = h9[x] * f - mb * mb + eps
        vr = h10[x] * f - mr * mp
        vg = h11[x] * f - mg * mp
        vb = h12[x] * f - mb * mp
        # LDLᵀ solve (backward stable; the cofactor inverse cancels catastrophically for a nearly singular
        # Σ, e.g. a gray image as an RGB guide at small eps). The pivots are >= eps in exact arithmetic.
        # Reciprocals of the first two pivots, each used three times: 3 divisions instead of 6 (2 % of the
        # filter's time at 1024², against 4 % with the divisions).
        i0 = 1.0 / srr
        l10 = srg * i0
        l20 = srb * i0
        d1 = max(sgg - l10 * srg, eps)
        i1 = 1.0 / d1
        t = sgb - l20 * srg
        l21 = t * i1
        d2 = max(sbb - l20 * srb - l21 * t, eps)
        y1 = vg - l10 * vr
        y2 = vb - l20 * vr - l21 * y1
        ab = y2 / d2
        ag = y1 * i1 - l21 * ab
        ar = vr * i0 - l10 * ag - l20 * ab
        o0[x] = ar
        o1[x] = ag
        o2[x] = ab
        o3[x] = mp - ar * mr - ag * mg - ab * mb


@njit_inner(cache=True, error_model="numpy")
def _color_out_row(cs, w, r, inv_x, inv_y, g, o):
    """Compute one output row ``o = āᵀI + b̄``.

    The horizontal running sums of the stage-2 column sums are fused with the output (four add chains; no
    store and reload of the window sums).
    """
    c0 = cs[0]
    c1 = cs[1]
    c2 = cs[2]
    c3 = cs[3]
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    for j in range(2 * r + 1):
        a0 += c0[j]
        a1 += c1[j]
        a2 += c2[j]
        a3 += c3[j]
    k = 2 * r
    for x in range(w):
        if x > 0:
            a0 += c0[x + k] - c0[x - 1]
            a1 += c1[x + k] - c1[x - 1]
            a2 += c2[x + k] - c2[x - 1]
            a3 += c3[x + k] - c3[x - 1]
        o[x] = (a0 * np.float64(g[x, 0]) + a1 * np.float64(g[x, 1]) + a2 * np.float64(g[x, 2]) + a3) * (
            inv_x[x] * inv_y
        )


@njit(cache=True, nogil=True, error_model="numpy")
def color_rows(I, p, out, coef, step, h, w, r, eps, reflect, y0, y1, write_coef, scratch):
    """Colour-guide guided filter on output rows y0..y1-1 (same structure as :func:`gray_rows`).

    ``scratch``: as for :func:`gray_rows` with 13 products and 4 coefficients: float64 (13, w+2r),
    (4, w+2r), (13, w), float32 or float64 (2r+3, 4, w), float64 (w); the last axis of the first four
    may be longer (only its first w+2r or w elements are used: the wrapper pads rows so that planes fall
    into different cache sets).
    """
    cs1, cs2, hs, ring, inv_x = scratch
    k = ring.shape[0] - 1
    _reset(cs1, cs2, ring[k], inv_x, w, r, reflect)
    t = y0 - r if y0 > r else 0
    for j in range(t - r, t + r + 1):
        if reflect:
            _color_rows_add(I, p, _refl(j, h), step, w, r, 1.0, cs1)
        elif 0 <= j < h:
            _color_rows_add(I, p, j, step, w, r, 1.0, cs1)
    t_init = y0 + r if y0 + r < h else h - 1
    while True:
        _pad_row(cs1, w, r, reflect)
        _color_coeffs_row(cs1, hs, inv_x, _inv_count_row(t, h, r, reflect), eps, w, r, ring, t % k)
        if t >= t_init:
            break
        _advance_color(I, p, cs1, t, step, h, w, r, reflect)
        t += 1
    for j in range(y0 - r, y0 + r + 1):
        if reflect:
            _ring_update(ring, _refl(j, h) % k, k, w, r, cs2)
        elif 0 <= j < h:
            _ring_update(ring, j % k, k, w, r, cs2)
    for y in range(y0, y1):
        if y > y0:
            jo = y - r - 1
            jn = y + r
            if jn < h and jn > t:
                _advance_color(I, p, cs1, t, step, h, w, r, reflect)
                t += 1
                _pad_row(cs1, w, r, reflect)
                _color_coeffs_row(cs1, hs, inv_x, _inv_count_row(t, h, r, reflect), eps, w, r, ring, t % k)
            if reflect:
                _ring_update(ring, _refl(jn, h) % k, _refl(jo, h) % k, w, r, cs2)
            else:
                _ring_update(ring, jn % k if jn < h else k, jo % k if jo >= 0 else k, w, r, cs2)
        _pad_row(cs2, w, r, reflect)
        inv_y = _inv_count_row(y, h, r, reflect)
        if not write_coef:
            _color_out_row(cs2, w, r, inv_x, inv_y, I[y], out[y])
            continue
        _hsums4(cs2, w, r, hs)  # hs rows 0..3 reused: stage 1 of this row is done
        h0 = hs[0]
        h1 = hs[1]
        h2 = hs[2]
        h3 = hs[3]
        for x in range(w):
            f = inv_x[x] * inv_y
            coef[y, x, 0] = h0[x] * f
            coef[y, x, 1] = h1[x] * f
            coef[y, x, 2] = h2[x] * f
            coef[y, x, 3] = h3[x] * f


# ------------------------------------------------------------------------------------------- drivers
@njit(cache=True, nogil=True, error_model="numpy")
def gray_images(I, p, out, coef, step, h, w, r, eps, reflect, n0, n1, write_coef, scratch):
    """Gray guided filter of images n0..n1-1 of an (N, H, W) batch (``scratch`` as for :func:`gray_rows`)."""
    for n in range(n0, n1):
        gray_rows(I[n], p[n], out[n], coef[n], step, h, w, r, eps, reflect, 0, h, write_coef, scratch)


@njit(cache=True, nogil=True, error_model="numpy")
def color_images(I, p, out, coef, step, h, w, r, eps, reflect, n0, n1, write_coef, scratch):
    """Colour-guide guided filter of images n0..n1-1 of an (N, H, W, 3) batch (scratch: see color_rows)."""
    for n in range(n0, n1):
        color_rows(I[n], p[n], out[n], coef[n], step, h, w, r, eps, reflect, 0, h, write_coef, scratch)


@njit_inner(cache=True, error_model="numpy")
def _axis_weights(i, n_in, n_out):
    src = (i + 0.5) * (n_in / n_out) - 0.5
    if src < 0.0:
        src = 0.0
    i0 = int(src)
    if i0 > n_in - 1:
        i0 = n_in - 1
    i1 = i0 + 1 if i0 + 1 < n_in else n_in - 1
    return i0, i1, src - i0


@njit_inner(cache=True, error_model="numpy")
def _hupsample_row(coef, j, x0s, x1s, lxs, dst):
    """dst[q, :] = low-res coefficient row j upsampled horizontally (bilinear) to dst's width."""
    k = coef.shape[2]
    for q in range(k):
        d = dst[q]
        for x in range(d.shape[0]):
            lx = lxs[x]
            d[x] = coef[j, x0s[x], q] * (1.0 - lx) + coef[j, x1s[x], q] * lx


@njit_inner(cache=True, error_model="numpy")
def _upsample_rows(I, coef, out, y0, y1, x0s, x1s, lxs):
    """Compute rows y0..y1-1 of q = ā↑·I + b̄↑.

    Each low-res row is upsampled horizontally once into one of two full-width row slots (by row
    parity); each output row is then a vectorized vertical blend.
    """
    h = coef.shape[0]
    H = out.shape[0]
    W = out.shape[1]
    k = coef.shape[2]
    rows = np.empty((2, k, W))
    held = np.full(2, -1, dtype=np.int64)
    for y in range(y0, y1):
        a0, a1, ly = _axis_weights(y, h, H)
        for j in (a0, a1):
            slot = j & 1
            if held[slot] != j:
                _hupsample_row(coef, j, x0s, x1s, lxs, rows[slot])
                held[slot] = j
        top = rows[a0 & 1]
        bot = rows[a1 & 1]
        wt = 1.0 - ly
        o = out[y]
        if k == 2:
            t0 = top[0]
            t1 = top[1]
            b0 = bot[0]
            b1 = bot[1]
            g = I[y, :, 0]
            for x in range(W):
                o[x] = (t0[x] * wt + b0[x] * ly) * np.float64(g[x]) + (t1[x] * wt + b1[x] * ly)
        else:
            g = I[y]
            for x in range(W):
                acc = top[k - 1, x] * wt + bot[k - 1, x] * ly
                for q in range(k - 1):
                    acc += (top[q, x] * wt + bot[q, x] * ly) * np.float64(g[x, q])
                o[x] = acc


@njit_inner(cache=True, error_model="numpy")
def _x_weights(w, W):
    x0s = np.empty(W, dtype=np.int64)
    x1s = np.empty(W, dtype=np.int64)
    lxs = np.empty(W)
    for x in range(W):
        i0, i1, lx = _axis_weights(x, w, W)
        x0s[x] = i0
        x1s[x] = i1
        lxs[x] = lx
    return x0s, x1s, lxs


@njit(cache=True, nogil=True, error_model="numpy")
def upsample_rows(I, coef, out, y0, y1):
    """Compute rows y0..y1-1 of q = ā↑·I + b̄↑.

    I is (H, W, K-1) (gray as (H, W, 1)), coef (h, w, K) = (ā..., b̄) upsampled bilinearly
    (align_corners=False) to out's (H, W).
    """
    x0s, x1s, lxs = _x_weights(coef.shape[1], out.shape[1])
    _upsample_rows(I, coef, out, y0, y1, x0s, x1s, lxs)


@njit(cache=True, nogil=True, error_model="numpy")
def upsample_images(I, coef, out, n0, n1):
    """:func:`upsample_rows` for images n0..n1-1 of a batch."""
    x0s, x1s, lxs = _x_weights(coef.shape[2], out.shape[2])
    for n in range(n0, n1):
        _upsample_rows(I[n], coef[n], out[n], 0, out.shape[1], x0s, x1s, lxs)
