# Compiled assessment kernel. Twin: stream/core/_assess_py.py (Decimal, same API, same results).
#
# Inputs are int64 fixed-point columns (see stream/core/fixed.py): "6" suffix = value * 10**6,
# amounts come back as int64 tiyn. Intermediate products need up to ~10**38, so they are computed
# in 128-bit integers with overflow checks; an amount above MAX_LINE_TIYN gets a status instead.
# Rounding is half up on non-negative numbers: (n + d/2) / d.

import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t, int8_t

cnp.import_array()

cdef extern from *:
    """
    typedef __int128 i128;
    static inline int i128_mul(i128 a, i128 b, i128 *out) { return __builtin_mul_overflow(a, b, out); }
    static inline i128 i128_round_div(i128 n, i128 d) { return (n + d / 2) / d; }
    """
    # Cython only needs to know it is an integer; C sees the real 128-bit type.
    ctypedef long long i128
    bint i128_mul(i128 a, i128 b, i128 *out) nogil
    i128 i128_round_div(i128 n, i128 d) nogil

# Mirrors stream/core/fixed.py; tests/test_assess_kernel.py checks the two agree.
cdef enum:
    STATUS_OK = 0
    STATUS_OUT_OF_RANGE = 1
    STATUS_MISSING_VOLUME = 2
    UNIT_NONE = 0
    UNIT_KG = 1
    UNIT_PIECE = 2
    UNIT_PAIR = 3
    UNIT_LITRE = 4
    COMBINE_AD_VALOREM = 0
    COMBINE_SPECIFIC = 1
    COMBINE_MAX = 2
    COMBINE_SUM = 3
    REGIME_EXCESS = 1
    REGIME_WHOLE_VALUE = 2

cdef int64_t MICRO = 1000000
cdef int64_t MAX_LINE_TIYN = 1000000000000000  # 10**15 tiyn = 10**13 KZT
MAX_LINE_TIYN_VALUE = MAX_LINE_TIYN


cdef inline bint _mul3(i128 a, i128 b, i128 c, i128 *out) noexcept nogil:
    """out = a*b*c; True on overflow."""
    cdef i128 ab
    if i128_mul(a, b, &ab):
        return True
    return i128_mul(ab, c, out)


cdef inline bint _line_value(int64_t qty, int64_t price6, int64_t fx6, int64_t *value) noexcept nogil:
    """value = round(qty * unit_price * fx) in tiyn; True when out of range."""
    cdef i128 product
    if _mul3(qty, price6, fx6, &product):
        return True
    product = i128_round_div(product, <i128>10000000000)  # micro * micro -> tiyn: 10**12 / 10**2
    if product > MAX_LINE_TIYN:
        return True
    value[0] = <int64_t>product
    return False


cdef inline int64_t _units6(int8_t unit, int64_t qty, int64_t weight6, int64_t volume6) noexcept nogil:
    """Quantity in a tariff unit, * 10**6; -1 when the unit is litres and the volume is unknown."""
    if unit == UNIT_KG:
        return weight6
    if unit == UNIT_PIECE or unit == UNIT_PAIR:
        return qty * MICRO
    if unit == UNIT_LITRE:
        if volume6 < 0:
            return -1
        return qty * volume6
    return 0


cdef int _warehouse(
    const int64_t[::1] qty, const int64_t[::1] price6, const int64_t[::1] fx6,
    const int64_t[::1] unit_weight6, const int64_t[::1] unit_volume6,
    const int64_t[::1] ad_valorem_pct6, const int64_t[::1] specific_eur6, const int8_t[::1] specific_unit,
    const int8_t[::1] combine, const int64_t[::1] excise_kzt6, const int8_t[::1] excise_unit,
    const int64_t[::1] eur_fx6, const int64_t[::1] vat_pct6,
    int64_t[::1] value, int64_t[::1] duty, int64_t[::1] excise, int64_t[::1] vat, int8_t[::1] status,
) noexcept nogil:
    cdef Py_ssize_t i, n = qty.shape[0]
    cdef int64_t line_value, weight6, spec_units6, excise_units6, volume6
    cdef i128 t, ad_valorem, specific, line_duty, line_excise
    for i in range(n):
        value[i] = 0
        duty[i] = 0
        excise[i] = 0
        vat[i] = 0
        status[i] = STATUS_OK
        if _line_value(qty[i], price6[i], fx6[i], &line_value):
            status[i] = STATUS_OUT_OF_RANGE
            continue
        weight6 = qty[i] * unit_weight6[i]
        volume6 = unit_volume6[i]
        spec_units6 = _units6(specific_unit[i], qty[i], weight6, volume6)
        excise_units6 = _units6(excise_unit[i], qty[i], weight6, volume6)
        if spec_units6 < 0 or excise_units6 < 0:
            status[i] = STATUS_MISSING_VOLUME
            continue

        ad_valorem = i128_round_div(<i128>line_value * ad_valorem_pct6[i], <i128>100000000)
        specific = 0
        if combine[i] != COMBINE_AD_VALOREM:
            if _mul3(specific_eur6[i], eur_fx6[i], spec_units6, &t):
                status[i] = STATUS_OUT_OF_RANGE
                continue
            specific = i128_round_div(t, <i128>10000000000000000)  # micro^3 -> tiyn: 10**18 / 10**2
        if combine[i] == COMBINE_AD_VALOREM:
            line_duty = ad_valorem
        elif combine[i] == COMBINE_SPECIFIC:
            line_duty = specific
        elif combine[i] == COMBINE_MAX:
            line_duty = ad_valorem if ad_valorem > specific else specific
        else:
            line_duty = ad_valorem + specific

        if i128_mul(excise_kzt6[i], excise_units6, &t):
            status[i] = STATUS_OUT_OF_RANGE
            continue
        line_excise = i128_round_div(t, <i128>10000000000)
        if line_duty > MAX_LINE_TIYN or line_excise > MAX_LINE_TIYN:
            status[i] = STATUS_OUT_OF_RANGE
            continue
        t = i128_round_div((<i128>line_value + line_duty + line_excise) * vat_pct6[i], <i128>100000000)
        if t > MAX_LINE_TIYN:
            status[i] = STATUS_OUT_OF_RANGE
            continue
        value[i] = line_value
        duty[i] = <int64_t>line_duty
        excise[i] = <int64_t>line_excise
        vat[i] = <int64_t>t
    return 0


cdef void _allocate(int64_t total, const int64_t[::1] weights, Py_ssize_t start, Py_ssize_t stop,
                    int64_t[::1] out) noexcept nogil:
    """Split ``total`` over lines start..stop in proportion to ``weights`` (largest remainder).

    Leftover tiyn go to the largest remainders, ties to the earlier line; with all weights zero
    everything goes to the first line. The parts always sum to ``total``.
    """
    cdef Py_ssize_t i, best
    cdef i128 weight_sum = 0, share, best_remainder, remainder
    cdef int64_t given = 0
    for i in range(start, stop):
        weight_sum += weights[i]
        out[i] = 0
    if stop <= start:
        return
    if weight_sum == 0:
        out[start] = total
        return
    for i in range(start, stop):
        share = (<i128>total * weights[i]) / weight_sum
        out[i] = <int64_t>share
        given += <int64_t>share
    while given < total:
        best = -1
        best_remainder = -1
        for i in range(start, stop):
            # remainders of lines already topped up are taken as -1 so each line gets at most one
            if out[i] != <int64_t>((<i128>total * weights[i]) / weight_sum):
                continue
            remainder = (<i128>total * weights[i]) % weight_sum
            if remainder > best_remainder:
                best_remainder = remainder
                best = i
        out[best] += 1
        given += 1


cdef int _parcel(
    const int64_t[::1] line_value, const int64_t[::1] qty, const int64_t[::1] unit_weight6,
    const int64_t[::1] offsets, const int64_t[::1] eur_fx6, const int8_t[::1] regime,
    const int64_t[::1] threshold_eur6, const int64_t[::1] threshold_kg6, const int64_t[::1] duty_pct6,
    const int64_t[::1] min_eur_per_kg6, const int64_t[::1] vat_pct6,
    int64_t[::1] duty, int64_t[::1] vat, int64_t[::1] line_duty, int64_t[::1] line_vat, int8_t[::1] status,
    int64_t[::1] line_weight6,
) noexcept nogil:
    cdef Py_ssize_t order, i, m = offsets.shape[0] - 1
    cdef i128 total_value, total_weight6, threshold, excess_value, excess_weight6, by_value, by_weight
    cdef i128 order_duty, order_vat
    for i in range(line_value.shape[0]):
        line_weight6[i] = qty[i] * unit_weight6[i]
    for order in range(m):
        duty[order] = 0
        vat[order] = 0
        status[order] = STATUS_OK
        total_value = 0
        total_weight6 = 0
        for i in range(offsets[order], offsets[order + 1]):
            total_value += line_value[i]
            total_weight6 += line_weight6[i]
        # everything below is scaled to tiyn * 10**18
        threshold = <i128>threshold_eur6[order] * eur_fx6[order]  # tiyn * 10**10
        order_duty = 0
        order_vat = 0
        if regime[order] == REGIME_EXCESS:
            excess_value = total_value * <i128>10000000000 - threshold
            if excess_value < 0:
                excess_value = 0
            excess_weight6 = total_weight6 - threshold_kg6[order] if threshold_kg6[order] >= 0 else 0
            if excess_weight6 < 0:
                excess_weight6 = 0
            if i128_mul(excess_value, duty_pct6[order], &by_value) or _mul3(
                    <i128>min_eur_per_kg6[order] * eur_fx6[order], excess_weight6, 100, &by_weight):
                status[order] = STATUS_OUT_OF_RANGE
                continue
            order_duty = i128_round_div(by_value if by_value > by_weight else by_weight,
                                        <i128>1000000000000000000)
        elif total_value * <i128>10000000000 > threshold:
            if _mul3(total_value, duty_pct6[order], 10000000000, &by_value) or _mul3(
                    <i128>min_eur_per_kg6[order] * eur_fx6[order], total_weight6, 100, &by_weight):
                status[order] = STATUS_OUT_OF_RANGE
                continue
            order_duty = i128_round_div(by_value if by_value > by_weight else by_weight,
                                        <i128>1000000000000000000)
            order_vat = i128_round_div((total_value + order_duty) * vat_pct6[order], <i128>100000000)
        if order_duty > MAX_LINE_TIYN or order_vat > MAX_LINE_TIYN:
            status[order] = STATUS_OUT_OF_RANGE
            continue
        duty[order] = <int64_t>order_duty
        vat[order] = <int64_t>order_vat
        if total_value > 0:
            _allocate(duty[order], line_value, offsets[order], offsets[order + 1], line_duty)
            _allocate(vat[order], line_value, offsets[order], offsets[order + 1], line_vat)
        else:
            _allocate(duty[order], line_weight6, offsets[order], offsets[order + 1], line_duty)
            _allocate(vat[order], line_weight6, offsets[order], offsets[order + 1], line_vat)
    return 0


def line_values(const int64_t[::1] qty, const int64_t[::1] price6, const int64_t[::1] fx6):
    """Customs value per line in tiyn and a status per line (1: out of range)."""
    cdef Py_ssize_t i, n = qty.shape[0]
    value_array = np.zeros(n, dtype=np.int64)
    status_array = np.zeros(n, dtype=np.int8)
    cdef int64_t[::1] value = value_array
    cdef int8_t[::1] status = status_array
    cdef int64_t line_value
    with nogil:
        for i in range(n):
            if _line_value(qty[i], price6[i], fx6[i], &line_value):
                status[i] = STATUS_OUT_OF_RANGE
            else:
                value[i] = line_value
    return value_array, status_array


def warehouse_lines(
    const int64_t[::1] qty, const int64_t[::1] price6, const int64_t[::1] fx6,
    const int64_t[::1] unit_weight6, const int64_t[::1] unit_volume6,
    const int64_t[::1] ad_valorem_pct6, const int64_t[::1] specific_eur6, const int8_t[::1] specific_unit,
    const int8_t[::1] combine, const int64_t[::1] excise_kzt6, const int8_t[::1] excise_unit,
    const int64_t[::1] eur_fx6, const int64_t[::1] vat_pct6,
):
    """Per line: value, duty, excise, VAT (tiyn) and status under the warehouse flow."""
    cdef Py_ssize_t n = qty.shape[0]
    outputs = [np.empty(n, dtype=np.int64) for _ in range(4)] + [np.empty(n, dtype=np.int8)]
    cdef int64_t[::1] value = outputs[0], duty = outputs[1], excise = outputs[2], vat = outputs[3]
    cdef int8_t[::1] status = outputs[4]
    with nogil:
        _warehouse(qty, price6, fx6, unit_weight6, unit_volume6, ad_valorem_pct6, specific_eur6,
                   specific_unit, combine, excise_kzt6, excise_unit, eur_fx6, vat_pct6,
                   value, duty, excise, vat, status)
    return tuple(outputs)


def parcel_orders(
    const int64_t[::1] line_value, const int64_t[::1] qty, const int64_t[::1] unit_weight6,
    const int64_t[::1] offsets, const int64_t[::1] eur_fx6, const int8_t[::1] regime,
    const int64_t[::1] threshold_eur6, const int64_t[::1] threshold_kg6, const int64_t[::1] duty_pct6,
    const int64_t[::1] min_eur_per_kg6, const int64_t[::1] vat_pct6,
):
    """Per order: duty, VAT and status under the parcel regimes; per line: the order's duty and VAT
    split in proportion to value (weight when the order has no value)."""
    cdef Py_ssize_t m = offsets.shape[0] - 1, n = line_value.shape[0]
    outputs = [np.empty(m, dtype=np.int64), np.empty(m, dtype=np.int64),
               np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), np.empty(m, dtype=np.int8)]
    cdef int64_t[::1] duty = outputs[0], vat = outputs[1], line_duty = outputs[2], line_vat = outputs[3]
    cdef int8_t[::1] status = outputs[4]
    cdef int64_t[::1] line_weight6 = np.empty(n, dtype=np.int64)
    with nogil:
        _parcel(line_value, qty, unit_weight6, offsets, eur_fx6, regime, threshold_eur6, threshold_kg6,
                duty_pct6, min_eur_per_kg6, vat_pct6, duty, vat, line_duty, line_vat, status, line_weight6)
    return tuple(outputs)


from libc.stdio cimport snprintf
from cpython.unicode cimport PyUnicode_DecodeASCII


def format_tiyn_column(const int64_t[::1] amounts):
    """Each amount in tiyn as a KZT string with two decimals ("1234.05"), as a list."""
    cdef Py_ssize_t i, n = amounts.shape[0]
    cdef char buffer[32]
    cdef int length
    cdef int64_t amount
    out = [None] * n
    for i in range(n):
        amount = amounts[i]
        if amount < 0:
            length = snprintf(buffer, 32, "-%lld.%02lld", <long long>(-amount // 100), <long long>(-amount % 100))
        else:
            length = snprintf(buffer, 32, "%lld.%02lld", <long long>(amount // 100), <long long>(amount % 100))
        out[i] = PyUnicode_DecodeASCII(buffer, length, NULL)
    return out
