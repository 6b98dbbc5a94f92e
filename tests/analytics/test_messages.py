"""Opportunity text: the compiled template writer against Python's format, the factor JSON against Arrow's cast."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from mintel.analytics import messages as m

EDGES = [999.985, 999.99, 999.994999, 999.995, 999.9950000001, 1000.0, -999.995, 0.0, -0.0, np.nan, -np.nan, np.inf,
         -np.inf, 0.125, 0.375, 2.5, 3.5, -0.5, 0.05, 1.005, 0.285, 1.45, 2.675, 1234567.891, 1e12, 9.99999e12]


def values(n: int = 60_000, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.lognormal(3, 3, n) * rng.choice([-1, 1], n),
                           rng.integers(-10**6, 10**6, n // 2) / 1000,  # exact halves and ties at every spec
                           rng.integers(-10**6, 10**6, n // 2) / 200, EDGES])


@pytest.mark.parametrize("spec", [".0f", ".1f", ".2f", "+.1f", ",.0f", ",.2f", "+,.3f"])
def test_numbers_are_written_as_pythons_format_spec_writes_them(spec):
    x = values()
    x = x[~(np.abs(x) >= 1e13)]
    got = m.render(f"[{{x:{spec}}}]", {"x": x}).to_pylist()
    shown = np.isfinite(x)
    assert got == [format(v, spec) if s else "" for v, s in zip(x.tolist(), shown.tolist())]


def test_prices_read_as_a_trader_reads_them():
    # 2,950 from 1000 on, else two decimals (with a separator when they round up to 1,000.00); nan and inf
    # as Python writes them
    x = values(seed=11)
    x = x[~(np.abs(x) >= 1e13)]
    assert m.render("{x:price}", {"x": x}).to_pylist() == [f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.2f}" for v in x.tolist()]
    assert m.render("{x:price}", {"x": np.array([812.349, 2950.4, 999.996])}).to_pylist() == ["812.35", "2,950", "1,000.00"]


def test_numbers_beyond_the_kernels_exact_range_are_written_by_python():
    x = np.array([1.5e13, -2.25e15, 3.0])
    assert m.render("{x:.2f}/{x:price}", {"x": x}).to_pylist() == [f"{v:.2f}/{v:,.0f}" if abs(v) >= 1000 else f"{v:.2f}/{v:,.2f}"
                                                                   for v in x.tolist()]


def test_optional_pieces_flags_and_constants():
    template = "{symbol} is {state}: RSI {rsi:.0f}{turn?, turning {way}|}[ on {vr:.1f}× volume]"
    columns = {"symbol": np.array(["RELIANCE", "TCS", "ÉTÉ", "M&M"], object), "rsi": np.array([27.5, 28.5, np.nan, 31.2]),
               "turn": np.array([True, False, True, False]), "vr": np.array([3.04, np.nan, np.inf, 0.05]),
               "state": "oversold", "way": "up"}
    got = m.render(template, columns).to_pylist()
    assert got == ["RELIANCE is oversold: RSI 28, turning up on 3.0× volume", "TCS is oversold: RSI 28",
                   "ÉTÉ is oversold: RSI nan, turning up", "M&M is oversold: RSI 31 on 0.1× volume"]
    assert got == m.render_py(template, columns)


def test_templates_rendered_together_equal_each_rendered_alone():
    rng = np.random.default_rng(3)
    parts = []
    for template, n in (("{symbol} broke {what} {level:price} ({touches:.0f} touches)[ on {vr:.1f}× volume]", 500),
                        ("{symbol}: MACD crossed {words} its signal line, {below?below|above} the zero line (MACD {macd:.2f})", 0),
                        ("{symbol} gapped up {pct:.1f}%[ ({atr:.1f} ATR)] to {open:price} from {prev:price}, "
                         "{hold?holding the gap|filling the gap}", 700),
                        ("{symbol} traded {vr:.1f}× its usual volume", 300)):
        x = rng.lognormal(4, 2, (n, 4))
        x[rng.random((n, 4)) < 0.1] = np.nan
        parts.append((template, {"symbol": np.array([f"S{i}" for i in range(n)], object), "what": "support", "words": "above",
                                 "level": x[:, 0], "touches": rng.integers(2, 9, n), "vr": x[:, 1], "macd": x[:, 2] - 50,
                                 "below": x[:, 2] < 50, "pct": x[:, 3], "atr": x[:, 1], "open": x[:, 0], "prev": x[:, 2],
                                 "hold": x[:, 3] > 50}))
    together = m.render_all(parts)
    assert isinstance(together, pa.StringArray) and len(together) == 1500
    assert together.to_pylist() == [s for t, c in parts for s in m.render_py(t, c)]
    assert m.render_all([]).to_pylist() == []


def test_template_mistakes_are_named():
    for template, error in (("{a:.1f}[ x", "'\\[' without '\\]'"), ("{a:.1f}] x", "'\\]' without '\\['"),
                            ("{a:.1g}", "format '.1g'"), ("{a?yes}", "needs 'yes\\|no'")):
        with pytest.raises(ValueError, match=error):
            m.render(template, {"a": np.ones(2)})
    with pytest.raises(ValueError, match="no column 'b'"):
        m.render("{a:.1f} {b:.1f}", {"a": np.ones(2)})


def arrow_json(names, points):
    return m._factor_json_arrow(names, np.asarray(points, np.float64)).to_pylist()


def test_factor_json_is_arrows_text_of_each_point():
    rng = np.random.default_rng(5)
    pts = np.round(rng.normal(0, 30, (20_000, 4)), 2)
    pts[:8, 0] = [-0.0, np.nan, np.inf, -np.inf, 100.0, 0.05, 0.1, 999_999.99]
    names = ["base", "volume", "margin", "trend"]
    got = m.factor_json(names, pts).to_pylist()
    assert got == arrow_json(names, pts)
    assert got[4] == '{"base": 100, "volume": %s, "margin": %s, "trend": %s}' % tuple(
        str(v).removesuffix(".0") for v in pts[4, 1:])
    finite = np.isfinite(pts).all(axis=1)
    assert [list(json.loads(s).values()) for s in np.array(got, object)[finite]] == pts[finite].tolist()
    # parts with their own factors, together
    other = np.round(rng.uniform(0, 50, (300, 2)), 2)
    together = m.factor_json_all([(names, pts), (["base", "size"], other), (["x"], np.empty((0, 1)))]).to_pylist()
    assert together == got + arrow_json(["base", "size"], other)


def test_factor_json_of_points_the_kernel_does_not_take_is_arrows():
    # not a multiple of 0.01, or 1e6 and more: Arrow writes them (1e+15, 0.001)
    for pts in (np.array([[40.0, 0.001]]), np.array([[1e15, 2.0]]), np.array([[1e6, 3.5]])):
        assert m.factor_json(["base", "x"], pts).to_pylist() == arrow_json(["base", "x"], pts)
    # one such point among many rows: the rows are written in chunks, and any chunk's refusal sends all to Arrow
    rng = np.random.default_rng(8)
    pts = np.round(rng.uniform(-50, 50, (10_000, 3)), 2)
    pts[5_003, 1] = 0.125
    got = m.factor_json(["a", "b", "c"], pts).to_pylist()
    assert got == arrow_json(["a", "b", "c"], pts) and got[5_003].endswith('"b": 0.125, "c": %s}' % str(pts[5_003, 2]).removesuffix(".0"))


def test_rows_each_in_their_program_equal_each_template_in_python():
    templates = ("{symbol} broke {what} {level:price} ({touches:.0f} touches)[ on {vr:.1f}× volume]",
                 "{symbol}: MACD crossed {words} (MACD {macd:.2f}), {below?below|above} zero",
                 "{symbol} traded {vr:.1f}× its usual volume[, {move:+.1f}%]")
    constants = {"what": "support", "words": "above"}
    programs = tuple(m.program(t, constants) for t in templates)
    rng = np.random.default_rng(4)
    n = 3_000
    which = rng.integers(0, 3, n)
    numbers = rng.lognormal(4, 2, (n, 3)) * rng.choice([-1, 1], (n, 3))
    numbers[rng.random((n, 3)) < 0.1] = np.nan
    flags = rng.random((n, 1)) < 0.5
    symbols = np.array([f"S{i}É" for i in range(n)], object)
    expect = np.empty(n, object)
    for w, prog in enumerate(programs):
        at = np.flatnonzero(which == w)
        names = prog.numbers + prog.flags
        columns = {"symbol": symbols[at], **constants, **{c: numbers[at, j] for j, c in enumerate(prog.numbers)},
                   **{c: flags[at, j] for j, c in enumerate(prog.flags)}}
        assert len(names) <= 3
        expect[at] = m.render_py(templates[w], columns)
    got = m.render_coded(programs, which, pa.array(symbols, pa.string()), numbers, flags)
    assert got.to_pylist() == expect.tolist()
    numbers[7, :] = 2.5e13  # beyond the kernel's exact range: Python writes every row
    expect[7] = m.render_py(templates[which[7]], {"symbol": symbols[7:8], **constants,
                                                  **{c: numbers[7:8, j] for j, c in enumerate(programs[which[7]].numbers)},
                                                  **{c: flags[7:8, j] for j, c in enumerate(programs[which[7]].flags)}})[0]
    assert m.render_coded(programs, which, pa.array(symbols, pa.string()), numbers, flags).to_pylist() == expect.tolist()
