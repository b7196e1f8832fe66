"""The data half of training, one function per phase, in the order train_strategy calls them:

    load_frames -> compute_indicators -> compute_fuzzy -> build_features -> build_labels
    -> combine -> split_and_scale

and `prediction_features`, which builds the same features for the latest bars of a symbol.
Everything is per symbol and per timeframe until `combine`; nothing here reports progress or
knows about cancellation (train_strategy checks between phases).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from libs.pipeline.classes import label_space
from libs.pipeline.config.sections import IndicatorConfig
from libs.pipeline.config.strategy import StrategyConfig
from libs.pipeline.data import timeframes as tf
from libs.pipeline.data.context import (
    Series,
    align_as_of,
    context_series,
    known_times,
    symbol_bars,
)
from libs.pipeline.data.ohlcv import DataError, load_symbol, parse_bound
from libs.pipeline.features import symbol_features
from libs.pipeline.fuzzy import fuzzy_input
from libs.pipeline.indicators.compute import compute_frame
from libs.pipeline.labels import (
    NOT_EVENT,
    UNKNOWN,
    average_uniqueness,
    cusum_events,
    forward_returns,
    regime_labels,
    threshold_labels,
    triple_barrier_labels,
    volatility,
    wilder_atr,
    zigzag_labels,
)
from libs.pipeline.split import SPLITS, Scaler, Window, calendar_windows

__all__ = [
    "SplitData",
    "SymbolPart",
    "build_features",
    "build_labels",
    "combine",
    "compute_fuzzy",
    "compute_indicators",
    "load_frames",
    "prediction_features",
    "split_and_scale",
    "weak_split_problems",
]

Frames = dict[str, dict[str, pd.DataFrame]]  # symbol -> timeframe -> frame


@dataclass(frozen=True)
class SymbolPart:
    """One symbol's usable rows: features and labels (UNKNOWN included: -1 for classes, NaN
    for a regression target) on the same index, in time order, and every base bar loaded
    (for purging, labels on a prefix and the trading read)."""

    symbol: str
    X: pd.DataFrame
    y: pd.Series
    close: pd.Series
    bars: pd.DataFrame | None = None  # base OHLC; None: labels need the close only
    weights: pd.Series | None = None  # per-row sample weights (triple barrier uniqueness)


def unknown(y: np.ndarray) -> np.ndarray:
    """Rows whose label the data cannot tell yet (UNKNOWN classes, NaN regression targets)."""
    y = np.asarray(y)
    mask: np.ndarray = np.isnan(y) if y.dtype.kind == "f" else y == UNKNOWN
    return mask


@dataclass
class SplitData:
    X_train: np.ndarray  # float32 (rows, features), or (rows, sequence_length, features)
    y_train: np.ndarray  # int64 (rows,) classes, or float32 regression targets
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    feature_names: list[str]
    scaler: Scaler | None
    rows: dict[str, dict[str, int]]  # symbol -> {train, validation, test} -> rows
    # symbol -> split -> the timestamps of its rows (for evaluation and inspection)
    index: dict[str, dict[str, pd.DatetimeIndex]] = field(default_factory=dict)
    # split -> one row per sample, stacked like X: symbol, time, next_return, momentum
    context: dict[str, pd.DataFrame] = field(default_factory=dict)
    # cut dates, purge, rows excluded per split (unknown labels, purged): JSON-able
    report: dict[str, Any] = field(default_factory=dict)
    w_train: np.ndarray | None = None  # per-row loss weights (None: every row weighs 1)


def load_frames(cfg: StrategyConfig, data_dir: Path, start: str | None, end: str | None) -> Frames:
    """OHLCV bars per symbol and timeframe, with `history_required` bars of warm-up kept
    before `start` (inclusive bounds, UTC; a bare date as `end` covers that whole day). No
    `start`/`end`: the strategy's own date range, if it gives one."""
    start = start if start is not None else cfg.start_date
    end = end if end is not None else cfg.end_date
    start_ts = parse_bound(start, end=False, label="start")
    end_ts = parse_bound(end, end=True, label="end")
    if start_ts is not None and end_ts is not None and start_ts > end_ts:
        raise DataError(f"start ({start}) is after end ({end})", "bad_date")
    return {
        symbol: load_symbol(
            Path(data_dir),
            symbol,
            cfg.timeframes,
            cfg.base_timeframe,
            start_ts,
            end_ts,
            cfg.history_bars,
            cfg.session,
        )
        for symbol in cfg.symbols
    }


def _converged(indicators: list[IndicatorConfig], values: pd.DataFrame) -> pd.DataFrame:
    """Each indicator's columns NaN until it has converged (its spec's warm-up)."""
    position = np.arange(len(values))
    for indicator in indicators:
        warmup = indicator.spec.warmup(indicator.params)
        prefix = f"{indicator.feature_id}."
        for column in values.columns:
            if column == indicator.feature_id or column.startswith(prefix):
                values[column] = values[column].mask(position < warmup)
    return values


def compute_indicators(cfg: StrategyConfig, frames: Frames, data_dir: Path | None = None) -> Frames:
    """Indicator columns (by feature_id, `feature_id.output`) on each timeframe's own bars,
    NaN until each indicator has converged (its spec's `warmup`: TA-Lib's own lookback plus,
    for recursive smoothing, the bars until the seed weighs at most CONVERGENCE), so no value
    used depends on where the data file begins. An indicator with a `data_source` is computed
    on that series' own bars (read from `data_dir`) and aligned as of each row's close."""
    own = [i for i in cfg.indicators if i.data_source is None]
    sourced = [i for i in cfg.indicators if i.data_source is not None]
    series = _SeriesCache(cfg, data_dir) if sourced else None
    out: Frames = {}
    for symbol, tfs in frames.items():
        out[symbol] = {}
        for timeframe, bars in tfs.items():
            values = _converged(own, compute_frame(own, bars)) if own else bars.iloc[:, :0].copy()
            values.attrs.update(bars.attrs)
            if series is not None:
                decided = known_times(bars, timeframe)
                for indicator in sourced:
                    source = series.get(str(indicator.data_source), timeframe)
                    computed = _converged([indicator], compute_frame([indicator], source.bars))
                    aligned = align_as_of(computed, source.known_at, decided)
                    for k, column in enumerate(computed.columns):
                        values[column] = aligned[:, k]
            ordered = values[_column_order(cfg, values)]
            ordered.attrs.update(bars.attrs)
            out[symbol][timeframe] = ordered
    return out


def _column_order(cfg: StrategyConfig, values: pd.DataFrame) -> list[str]:
    """The indicators' columns in the strategy's indicator order."""
    ordered = []
    for indicator in cfg.indicators:
        prefix = f"{indicator.feature_id}."
        ordered += [c for c in values.columns if c == indicator.feature_id or c.startswith(prefix)]
    return ordered


class _SeriesCache:
    """data_source series, each read once per timeframe it is aligned to."""

    def __init__(self, cfg: StrategyConfig, data_dir: Path | None) -> None:
        if data_dir is None:
            raise ValueError("indicators with a data_source need the data folder")
        self.cfg, self.data_dir = cfg, Path(data_dir)
        self.entries = {name: e for e in cfg.context_data for name in e.names()}
        self.cache: dict[tuple[str, str], Series] = {}

    def get(self, name: str, timeframe: str) -> Series:
        entry = self.entries.get(name)
        if entry is not None and entry.provider != "ib":
            key = (name, "")
            if key not in self.cache:
                self.cache[key] = context_series(self.data_dir, entry, name)
            return self.cache[key]
        frame_tf = entry.timeframe if entry is not None and entry.timeframe else timeframe
        key = (name, frame_tf)
        if key not in self.cache:
            self.cache[key] = symbol_bars(self.data_dir, name, frame_tf, self.cfg.session)
        return self.cache[key]


def compute_fuzzy(cfg: StrategyConfig, frames: Frames, indicators: Frames) -> Frames:
    """Membership columns `{input}_{set}` on each timeframe's own bars, and the raw
    indicator columns that nn_inputs lists (`raw_indicator: macd_12_26_9.line` -> column
    `macd_12_26_9.line`)."""
    out: Frames = {}
    for symbol, tfs in indicators.items():
        out[symbol] = {}
        for timeframe, values in tfs.items():
            bars = frames[symbol][timeframe]
            columns: dict[str, np.ndarray] = {}
            for key, fuzzy in cfg.fuzzy_sets.items():
                _, column = cfg.fuzzy_source(key)
                columns.update(fuzzy_input(key, fuzzy, values[column].to_numpy(), bars))
            for item in cfg.nn_inputs or ():
                if item.raw_indicator is not None:
                    _, column = cfg.indicator_column(item.raw_indicator)
                    columns[item.raw_indicator] = values[column].to_numpy(dtype=np.float64)
            frame = pd.DataFrame(columns, index=values.index)
            frame.attrs.update(values.attrs)
            out[symbol][timeframe] = frame
    return out


def input_columns(cfg: StrategyConfig, timeframe: str) -> list[tuple[str, str]]:
    """The (column, normalization) pairs of one timeframe's inputs, in model order: every
    fuzzy set's memberships (v1/v2, normalised as model.features says), or what nn_inputs
    lists for this timeframe."""
    if cfg.nn_inputs is None:
        f = cfg.model.features
        method = {"standard": "zscore", "minmax": "minmax"}[f.scaling_method]
        method = method if f.scale_features else "none"
        return [
            (f"{key}_{name}", method)
            for key, fuzzy in cfg.fuzzy_sets.items()
            for name in fuzzy.sets
        ]
    out: list[tuple[str, str]] = []
    for item in cfg.nn_inputs:
        if item.timeframes != "all" and timeframe not in item.timeframes:
            continue
        if item.fuzzy_set is not None:
            sets = cfg.fuzzy_sets[item.fuzzy_set].sets
            out += [(f"{item.fuzzy_set}_{name}", item.method) for name in sets]
        else:
            out.append((str(item.raw_indicator), item.method))
    return out


def feature_normalization(cfg: StrategyConfig) -> list[str]:
    """Each feature column's normalization, in the order build_features lays them out
    (timeframe blocks, each its columns then their lags)."""
    lags = cfg.model.features.lookback_periods + 1
    return [
        method
        for timeframe in cfg.timeframes
        for method in [m for _, m in input_columns(cfg, timeframe)] * lags
    ]


def build_features(cfg: StrategyConfig, fuzzy: Frames) -> dict[str, pd.DataFrame]:
    """Per symbol: every timeframe's (lagged) inputs on the base timeframe's rows."""
    lookback = cfg.model.features.lookback_periods
    selected = {t: [c for c, _ in input_columns(cfg, t)] for t in cfg.timeframes}
    empty = [t for t, columns in selected.items() if not columns]
    if empty:
        raise DataError(f"nn_inputs give no input on timeframe {empty[0]}", "features")
    return {
        symbol: symbol_features(
            {t: frame[selected[t]] for t, frame in tfs.items()},
            list(cfg.timeframes),
            cfg.base_timeframe,
            lookback,
        )
        for symbol, tfs in fuzzy.items()
    }


def label_values(cfg: StrategyConfig, bars: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
    """The labels of one symbol's base bars (classes, -1 UNKNOWN, -2 NOT_EVENT; or float
    targets with NaN unknown for regression) and the sample weights when the source computes
    them, by training.labels.source."""
    spec = cfg.training.labels
    close = bars["close"].to_numpy(dtype=np.float64)
    if spec.source == "zigzag":
        assert spec.zigzag_threshold is not None and spec.label_lookahead is not None
        return zigzag_labels(close, spec.zigzag_threshold, spec.label_lookahead), None
    high = bars["high"].to_numpy(dtype=np.float64)
    low = bars["low"].to_numpy(dtype=np.float64)
    if spec.source in ("forward_return", "context"):
        assert spec.horizon is not None
        returns = forward_returns(close, spec.horizon)
        if cfg.output_format == "regression":
            return returns, None
        assert spec.bullish_threshold is not None and spec.bearish_threshold is not None
        return threshold_labels(returns, spec.bullish_threshold, spec.bearish_threshold), None
    if spec.source == "triple_barrier":
        assert spec.vol_span is not None and spec.vol_method is not None
        assert spec.pt_multiplier is not None and spec.sl_multiplier is not None
        assert spec.max_holding_period is not None
        vol = volatility(high, low, close, spec.vol_span, spec.vol_method)
        events = None
        if spec.cusum_threshold is not None or spec.cusum_multiplier is not None:
            limit = (
                np.full(len(close), spec.cusum_threshold)
                if spec.cusum_threshold is not None
                else spec.cusum_multiplier * vol
            )
            events = cusum_events(close, limit)
        barriers = triple_barrier_labels(
            close, vol, spec.pt_multiplier, spec.sl_multiplier, spec.max_holding_period, events
        )
        weights = average_uniqueness(barriers.ends) if spec.compute_weights else None
        return barriers.labels, weights
    assert spec.atr_period is not None and spec.macro_atr_mult is not None
    assert spec.micro_atr_mult is not None and spec.vol_crisis_threshold is not None
    assert spec.vol_lookback is not None and spec.progression_tolerance is not None
    atr = wilder_atr(high, low, close, spec.atr_period)
    labels = regime_labels(
        close,
        atr,
        macro_atr_mult=spec.macro_atr_mult,
        micro_atr_mult=spec.micro_atr_mult,
        vol_crisis_threshold=spec.vol_crisis_threshold,
        vol_lookback=spec.vol_lookback,
        progression_tolerance=spec.progression_tolerance,
    )
    return labels, None


def build_labels(cfg: StrategyConfig, frames: Frames) -> dict[str, pd.DataFrame]:
    """Labels on each symbol's base timeframe (training.labels.source), beside its bars (and
    the sample weights, when the source computes them)."""
    out = {}
    for symbol, tfs in frames.items():
        bars = tfs[cfg.base_timeframe]
        values, weights = label_values(cfg, bars)
        frame = pd.DataFrame(
            {"label": values, **{c: bars[c].to_numpy() for c in ("high", "low", "close")}},
            index=bars.index,
        )
        if weights is not None:
            frame["weight"] = weights
        out[symbol] = frame
    return out


def _usable(symbol: str, X: pd.DataFrame) -> pd.Series:
    complete = X.notna().all(axis=1)
    if not complete.any():
        empty = [c for c in X.columns if X[c].isna().all()]
        reason = (
            f"these features are NaN on every row: {', '.join(empty[:5])}"
            f"{' ...' if len(empty) > 5 else ''} (too few bars for their indicators' warm-up?)"
            if empty
            else "no row has every feature (indicator warm-ups of different timeframes never "
            "overlap)"
        )
        raise DataError(f"{symbol}: no usable rows out of {len(X)}; {reason}", "unusable")
    return complete


def combine(
    features: dict[str, pd.DataFrame],
    labels: dict[str, pd.DataFrame],
    *,
    regression: bool = False,
) -> list[SymbolPart]:
    """Features and labels of each symbol on their common rows, warm-up (NaN) rows dropped,
    and bars a CUSUM filter made no event. UNKNOWN labels stay: the split counts them per
    split before excluding them (a regression target: NaN, kept as float)."""
    parts = []
    for symbol, X in features.items():
        frame = labels[symbol]
        y = frame["label"].reindex(X.index)
        present = y.index.isin(frame.index)
        keep = _usable(symbol, X) & present & (y != NOT_EVENT)
        y = y[keep] if regression else y[keep].astype(np.int64)
        weights = frame["weight"].reindex(X.index)[keep] if "weight" in frame else None
        bars = frame[["high", "low", "close"]]
        parts.append(SymbolPart(symbol, X[keep], y, frame["close"], bars, weights))
    return parts


def _iso(stamp: pd.Timestamp | None) -> str | None:
    return None if stamp is None else stamp.isoformat()


def purge_bars(cfg: StrategyConfig) -> int:
    given = cfg.training.data_split.purge_bars
    return cfg.training.labels.horizon_bars if given is None else given


def embargo_bars(cfg: StrategyConfig) -> int:
    given = cfg.training.data_split.embargo_bars
    if given is not None:
        return given
    labels = cfg.training.labels
    return int(labels.vol_span or 0) if labels.source == "triple_barrier" else 0


@dataclass(frozen=True)
class Selection:
    keep: np.ndarray  # row mask
    unknown: int  # rows with a label the data cannot tell yet
    purged: int  # rows whose label reads the next window's prices
    embargoed: int  # rows just after the window's start
    no_window: int  # rows without sequence_length - 1 usable rows before them


class _Rows:
    """Which rows of one symbol each window keeps, and why the others were excluded."""

    def __init__(self, cfg: StrategyConfig, part: SymbolPart) -> None:
        self.cfg, self.part = cfg, part
        self.times = pd.DatetimeIndex(part.X.index)
        self.labels = part.y.to_numpy()
        self._prefix_unknown: dict[pd.Timestamp, np.ndarray] = {}
        # A sequence model's window needs the sequence_length - 1 usable rows before it.
        self.has_window = np.arange(len(self.times)) >= cfg.sequence_length - 1

    def undetermined_before(self, cut: pd.Timestamp) -> np.ndarray:
        """Rows whose label reads prices at or after `cut` (unknown on the bars before it)."""
        if cut not in self._prefix_unknown:
            bars = self.part.bars
            if bars is None:
                bars = self.part.close.to_frame("close")
            prefix_bars = bars[bars.index < cut]
            values, _ = label_values(self.cfg, prefix_bars)
            prefix = pd.Series(values, index=prefix_bars.index)
            known = prefix.reindex(self.times).to_numpy()
            self._prefix_unknown[cut] = unknown(known) & (self.times < cut)
        return self._prefix_unknown[cut]

    def select(self, window: Window, purge_before_end: bool) -> Selection:
        inside = np.ones(len(self.times), dtype=bool)
        if window.start is not None:
            inside &= self.times >= window.start
        if window.end is not None:
            inside &= self.times < window.end
        bars = self.part.close.index
        embargoed = np.zeros_like(inside)
        embargo = embargo_bars(self.cfg)
        if window.start is not None and embargo:
            last = int(bars.searchsorted(window.start)) + embargo
            until = bars[last] if last < len(bars) else None
            embargoed = inside & (self.times < until if until is not None else True)
        no_window = inside & ~embargoed & ~self.has_window
        inside &= ~embargoed & ~no_window
        unlabelled = inside & unknown(self.labels)
        purged = np.zeros_like(inside)
        if purge_before_end and window.end is not None:
            first = max(0, int(bars.searchsorted(window.end)) - purge_bars(self.cfg))
            # A symbol whose bars stop before the cut has no bar `first` (with no purge): then
            # no row is near the next window's prices.
            near = self.times >= bars[first] if first < len(bars) else np.zeros_like(inside)
            purged = inside & ~unlabelled & (near | self.undetermined_before(window.end))
        return Selection(
            inside & ~unlabelled & ~purged,
            int(unlabelled.sum()),
            int(purged.sum()),
            int(embargoed.sum()),
            int(no_window.sum()),
        )

    def context(self, mask: np.ndarray) -> pd.DataFrame:
        close = self.part.close
        n = self.cfg.training.evaluation.momentum_bars
        space = label_space(self.cfg.class_names)
        next_return = (close.shift(-1) / close - 1.0).reindex(self.times[mask]).fillna(0.0)
        rising = (close > close.shift(n)).reindex(self.times[mask])
        momentum = np.where(rising, space.long, space.short)
        return pd.DataFrame(
            {
                "symbol": self.part.symbol,
                "time": self.times[mask],
                "next_return": next_return.to_numpy(),
                "momentum": momentum.astype(np.int64),
            }
        )


def split_and_scale(
    cfg: StrategyConfig, parts: list[SymbolPart], windows: list[Window] | None = None
) -> SplitData:
    """Every symbol cut at the same dates (`windows`: train, validation, test; by default
    from the strategy's training.data_split), rows with an unknown label excluded, rows whose
    label reads the next window's prices purged (and, with an embargo, the first rows after
    each cut dropped), the splits stacked over symbols, then scaled with statistics of the
    train rows alone. A sequence model's row is the window of the sequence_length rows
    ending at it (the row and the usable rows before it, scaled the same way)."""
    if not parts:
        raise DataError("no symbols to split", "unusable")
    windows = windows or calendar_windows(cfg.training.data_split, [p.X.index for p in parts])
    names = list(parts[0].X.columns)
    length = cfg.sequence_length
    regression = cfg.output_format == "regression"
    rows: dict[str, dict[str, int]] = {}
    index: dict[str, dict[str, pd.DatetimeIndex]] = {}
    excluded = {
        w.name: {"unknown_label": 0, "purged": 0, "embargoed": 0, "no_window": 0} for w in windows
    }
    masks: list[list[np.ndarray]] = []
    contexts: dict[str, list[pd.DataFrame]] = {n: [] for n in SPLITS}
    for part in parts:
        if list(part.X.columns) != names:
            raise DataError(
                f"{part.symbol}: feature columns differ from {parts[0].symbol}'s", "features"
            )
        selector = _Rows(cfg, part)
        rows[part.symbol], index[part.symbol] = {}, {}
        part_masks = []
        for k, window in enumerate(windows):
            chosen = selector.select(window, k < len(windows) - 1)
            part_masks.append(chosen.keep)
            contexts[window.name].append(selector.context(chosen.keep))
            rows[part.symbol][window.name] = int(chosen.keep.sum())
            index[part.symbol][window.name] = pd.DatetimeIndex(part.X.index[chosen.keep])
            counts = excluded[window.name]
            counts["unknown_label"] += chosen.unknown
            counts["purged"] += chosen.purged
            counts["embargoed"] += chosen.embargoed
            counts["no_window"] += chosen.no_window
        masks.append(part_masks)
    for counts in excluded.values():
        for key in ("embargoed", "no_window"):
            if not counts[key]:
                del counts[key]
    # float32 from the start: memberships need no more precision, and a million rows then
    # move through the split at half the memory traffic.
    features = [part.X.to_numpy(dtype=np.float32) for part in parts]
    targets = [part.y.to_numpy(dtype=np.float32 if regression else np.int64) for part in parts]
    for k, window in enumerate(windows):
        if sum(int(m[k].sum()) for m in masks) == 0:
            raise DataError(
                f"the {window.name} split is empty ({rows} rows per symbol; excluded: "
                f"{excluded[window.name]}); use more data or change training.data_split",
                "weak_split",
            )
    train_rows = [X[m[0]] for X, m in zip(features, masks, strict=True)]
    scaler = _fit_scaler(cfg, np.concatenate(train_rows))
    arrays = {}
    for k, window in enumerate(windows):
        if length == 1:
            X = np.concatenate([X[m[k]] for X, m in zip(features, masks, strict=True)])
            if scaler is not None:
                scaler.transform(X, copy=False)  # our own fresh array: scale in place
        else:
            X = np.concatenate(
                [
                    sequence_windows(_scaled(X, scaler), length)[m[k][length - 1 :]]
                    for X, m in zip(features, masks, strict=True)
                ]
            )
        y = np.concatenate([t[m[k]] for t, m in zip(targets, masks, strict=True)])
        arrays[window.name] = (X, y)
    weights = None
    if any(part.weights is not None for part in parts):
        weights = np.concatenate(
            [
                part.weights.to_numpy(dtype=np.float32)[m[0]]
                for part, m in zip(parts, masks, strict=True)
                if part.weights is not None
            ]
        )
    (X_train, y_train), (X_val, y_val), (X_test, y_test) = (arrays[n] for n in SPLITS)
    context = {n: pd.concat(contexts[n], ignore_index=True) for n in SPLITS}
    report = {
        "method": "dates" if cfg.training.data_split.by_dates else "fractions",
        "windows": {w.name: {"start": _iso(w.start), "end": _iso(w.end)} for w in windows},
        "purge_bars": purge_bars(cfg),
        "rows": {n: len(arrays[n][1]) for n in SPLITS},
        "excluded": excluded,
    }
    if embargo_bars(cfg):
        report["embargo_bars"] = embargo_bars(cfg)
    if length > 1:
        report["sequence_length"] = length
    return SplitData(
        X_train,
        y_train,
        X_val,
        y_val,
        X_test,
        y_test,
        names,
        scaler,
        rows,
        index,
        context,
        report,
        weights,
    )


def _fit_scaler(cfg: StrategyConfig, X_train: np.ndarray) -> Scaler | None:
    """v1/v2: one method for every feature (model.features); nn_inputs: one per input."""
    if cfg.nn_inputs is None:
        f = cfg.model.features
        return Scaler(f.scaling_method).fit(X_train) if f.scale_features else None
    methods = feature_normalization(cfg)
    if all(m == "none" for m in methods):
        return None
    return Scaler("columns", columns=methods).fit(X_train)


def _scaled(X: np.ndarray, scaler: Scaler | None) -> np.ndarray:
    return X if scaler is None else scaler.transform(X, copy=True)


def sequence_windows(X: np.ndarray, length: int) -> np.ndarray:
    """(rows - length + 1, length, features): window i holds rows i .. i + length - 1 (the
    row it ends at and the ones before it: past and present only). A view."""
    view = np.lib.stride_tricks.sliding_window_view(X, length, axis=0)
    return view.transpose(0, 2, 1)


def weak_split_problems(cfg: StrategyConfig, split: SplitData) -> list[str]:
    """What makes a split too weak to judge a model on: the guards of training.data_split."""
    spec = cfg.training.data_split
    problems = []
    for name, y in (("train", split.y_train), ("validation", split.y_val), ("test", split.y_test)):
        if len(y) < spec.min_rows:
            problems.append(
                f"the {name} split has {len(y)} rows, fewer than min_rows {spec.min_rows}"
            )
    classes = cfg.class_names
    missing = sorted(set(range(len(classes))) - set(np.unique(split.y_train).tolist()))
    if missing:
        names = ", ".join(classes[c] for c in missing)
        problems.append(f"no {names} row in the train split: the model could never learn it")
    times = split.context["test"]["time"]
    if len(times):
        span = (times.max() - times.min() + tf.length(cfg.base_timeframe)) / pd.Timedelta(days=1)
        if span < spec.min_test_days:
            problems.append(
                f"the test window spans {span:.1f} days, less than min_test_days "
                f"{spec.min_test_days:g}"
            )
    return problems


def prediction_features(
    cfg: StrategyConfig,
    data_dir: Path,
    symbol: str,
    feature_names: list[str],
    scaler: Scaler | None,
    last_n: int | None = None,
) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """Features for the latest complete bars of `symbol`, built exactly as in training
    (whole history loaded so recursive indicators like EMA/RSI match), in `feature_names`
    order and scaled with the model's saved scaler; for a sequence model, the window of
    sequence_length rows ending at each bar."""
    bars = {
        symbol: load_symbol(
            Path(data_dir),
            symbol,
            cfg.timeframes,
            cfg.base_timeframe,
            None,
            None,
            cfg.history_bars,
            cfg.session,
        )
    }
    fuzzy = compute_fuzzy(cfg, bars, compute_indicators(cfg, bars, data_dir))
    features = build_features(cfg, fuzzy)[symbol]
    missing = [name for name in feature_names if name not in features.columns]
    if missing:
        raise DataError(
            f"the model expects features this strategy does not produce: {', '.join(missing[:5])}",
            "features",
        )
    X = features[list(feature_names)]
    X = X[X.notna().all(axis=1)]
    length = cfg.sequence_length
    if length > 1:
        values = _scaled(X.to_numpy(dtype=np.float32), scaler)
        windows = sequence_windows(values, length)
        times = pd.DatetimeIndex(X.index[length - 1 :])
        if last_n is not None:
            keep = slice(-last_n, None) if last_n > 0 else slice(0, 0)
            windows, times = windows[keep], times[keep]
        return np.ascontiguousarray(windows), times
    if last_n is not None:
        X = X.iloc[-last_n:] if last_n > 0 else X.iloc[:0]
    values = X.to_numpy(dtype=np.float32, copy=True)  # as in training: float32, then scaled
    if scaler is not None:
        values = scaler.transform(values, copy=False)
    return np.ascontiguousarray(values), pd.DatetimeIndex(X.index)
