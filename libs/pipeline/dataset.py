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

from libs.pipeline.config.strategy import StrategyConfig
from libs.pipeline.data import timeframes as tf
from libs.pipeline.data.ohlcv import DataError, load_symbol, parse_bound
from libs.pipeline.features import symbol_features
from libs.pipeline.fuzzy import fuzzy_input
from libs.pipeline.indicators.compute import compute_frame
from libs.pipeline.labels import BUY, SELL, UNKNOWN, zigzag_labels
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
    """One symbol's usable rows: features and labels (UNKNOWN included) on the same index, in
    time order, and the close of every base bar loaded (for purging and the trading read)."""

    symbol: str
    X: pd.DataFrame
    y: pd.Series
    close: pd.Series


@dataclass
class SplitData:
    X_train: np.ndarray  # float32 (rows, features)
    y_train: np.ndarray  # int64 (rows,)
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


def load_frames(cfg: StrategyConfig, data_dir: Path, start: str | None, end: str | None) -> Frames:
    """OHLCV bars per symbol and timeframe, with `history_required` bars of warm-up kept
    before `start` (inclusive bounds, UTC; a bare date as `end` covers that whole day)."""
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


def compute_indicators(cfg: StrategyConfig, frames: Frames) -> Frames:
    """Indicator columns (by feature_id, `feature_id.output`) on each timeframe's own bars,
    NaN until each indicator has converged (its spec's `warmup`: TA-Lib's own lookback plus,
    for recursive smoothing, the bars until the seed weighs at most CONVERGENCE), so no value
    used depends on where the data file begins."""
    out: Frames = {}
    for symbol, tfs in frames.items():
        out[symbol] = {}
        for timeframe, bars in tfs.items():
            values = compute_frame(cfg.indicators, bars)
            position = np.arange(len(values))
            for indicator in cfg.indicators:
                warmup = indicator.spec.warmup(indicator.params)
                prefix = f"{indicator.feature_id}."
                for column in values.columns:
                    if column == indicator.feature_id or column.startswith(prefix):
                        values[column] = values[column].mask(position < warmup)
            out[symbol][timeframe] = values
    return out


def compute_fuzzy(cfg: StrategyConfig, frames: Frames, indicators: Frames) -> Frames:
    """Membership columns `{input}_{set}` on each timeframe's own bars."""
    out: Frames = {}
    for symbol, tfs in indicators.items():
        out[symbol] = {}
        for timeframe, values in tfs.items():
            bars = frames[symbol][timeframe]
            columns: dict[str, np.ndarray] = {}
            for key, fuzzy in cfg.fuzzy_sets.items():
                _, column = cfg.fuzzy_source(key)
                columns.update(fuzzy_input(key, fuzzy, values[column].to_numpy(), bars))
            frame = pd.DataFrame(columns, index=values.index)
            frame.attrs.update(values.attrs)
            out[symbol][timeframe] = frame
    return out


def build_features(cfg: StrategyConfig, fuzzy: Frames) -> dict[str, pd.DataFrame]:
    """Per symbol: every timeframe's (lagged) memberships on the base timeframe's rows."""
    lookback = cfg.model.features.lookback_periods
    return {
        symbol: symbol_features(tfs, list(cfg.timeframes), cfg.base_timeframe, lookback)
        for symbol, tfs in fuzzy.items()
    }


def build_labels(cfg: StrategyConfig, frames: Frames) -> dict[str, pd.DataFrame]:
    """ZigZag labels (0 BUY, 1 HOLD, 2 SELL, -1 UNKNOWN) on each symbol's base timeframe
    close, beside that close."""
    spec = cfg.training.labels
    out = {}
    for symbol, tfs in frames.items():
        close = tfs[cfg.base_timeframe]["close"]
        values = zigzag_labels(close.to_numpy(), spec.zigzag_threshold, spec.label_lookahead)
        out[symbol] = pd.DataFrame({"label": values, "close": close.to_numpy()}, index=close.index)
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


def combine(features: dict[str, pd.DataFrame], labels: dict[str, pd.DataFrame]) -> list[SymbolPart]:
    """Features and labels of each symbol on their common rows, warm-up (NaN) rows dropped.
    UNKNOWN labels stay: the split counts them per split before excluding them."""
    parts = []
    for symbol, X in features.items():
        y = labels[symbol]["label"].reindex(X.index)
        keep = _usable(symbol, X) & y.notna()
        parts.append(SymbolPart(symbol, X[keep], y[keep].astype(np.int64), labels[symbol]["close"]))
    return parts


def _iso(stamp: pd.Timestamp | None) -> str | None:
    return None if stamp is None else stamp.isoformat()


def purge_bars(cfg: StrategyConfig) -> int:
    given = cfg.training.data_split.purge_bars
    return cfg.training.labels.label_lookahead if given is None else given


class _Rows:
    """Which rows of one symbol each window keeps, and why the others were excluded."""

    def __init__(self, cfg: StrategyConfig, part: SymbolPart) -> None:
        self.cfg, self.part = cfg, part
        self.times = pd.DatetimeIndex(part.X.index)
        self.labels = part.y.to_numpy()
        self._prefix_unknown: dict[pd.Timestamp, np.ndarray] = {}

    def undetermined_before(self, cut: pd.Timestamp) -> np.ndarray:
        """Rows whose label reads prices at or after `cut` (unknown on the bars before it)."""
        if cut not in self._prefix_unknown:
            close = self.part.close[self.part.close.index < cut]
            spec = self.cfg.training.labels
            prefix = pd.Series(
                zigzag_labels(close.to_numpy(), spec.zigzag_threshold, spec.label_lookahead),
                index=close.index,
            )
            known = prefix.reindex(self.times).to_numpy()
            self._prefix_unknown[cut] = (known == UNKNOWN) & (self.times < cut)
        return self._prefix_unknown[cut]

    def select(self, window: Window, purge_before_end: bool) -> tuple[np.ndarray, int, int]:
        """(kept row mask, rows with an unknown label, rows purged before the window's end)."""
        inside = np.ones(len(self.times), dtype=bool)
        if window.start is not None:
            inside &= self.times >= window.start
        if window.end is not None:
            inside &= self.times < window.end
        unknown = inside & (self.labels == UNKNOWN)
        purged = np.zeros_like(inside)
        if purge_before_end and window.end is not None:
            bars = self.part.close.index
            first = max(0, int(bars.searchsorted(window.end)) - purge_bars(self.cfg))
            # A symbol whose bars stop before the cut has no bar `first` (with no purge): then
            # no row is near the next window's prices.
            near = self.times >= bars[first] if first < len(bars) else np.zeros_like(inside)
            purged = inside & ~unknown & (near | self.undetermined_before(window.end))
        return inside & ~unknown & ~purged, int(unknown.sum()), int(purged.sum())

    def context(self, mask: np.ndarray) -> pd.DataFrame:
        close = self.part.close
        n = self.cfg.training.evaluation.momentum_bars
        next_return = (close.shift(-1) / close - 1.0).reindex(self.times[mask]).fillna(0.0)
        momentum = np.where((close > close.shift(n)).reindex(self.times[mask]), BUY, SELL)
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
    label reads the next window's prices purged, the splits stacked over symbols, then scaled
    with a scaler fitted on the train rows alone."""
    if not parts:
        raise DataError("no symbols to split", "unusable")
    windows = windows or calendar_windows(cfg.training.data_split, [p.X.index for p in parts])
    names = list(parts[0].X.columns)
    rows: dict[str, dict[str, int]] = {}
    index: dict[str, dict[str, pd.DatetimeIndex]] = {}
    excluded = {w.name: {"unknown_label": 0, "purged": 0} for w in windows}
    blocks: dict[str, tuple[list[np.ndarray], list[np.ndarray], list[pd.DataFrame]]] = {
        n: ([], [], []) for n in SPLITS
    }
    for part in parts:
        if list(part.X.columns) != names:
            raise DataError(
                f"{part.symbol}: feature columns differ from {parts[0].symbol}'s", "features"
            )
        # float32 from the start: memberships need no more precision, and a million rows
        # then move through the split at half the memory traffic.
        X, y = part.X.to_numpy(dtype=np.float32), part.y.to_numpy(dtype=np.int64)
        selector = _Rows(cfg, part)
        rows[part.symbol], index[part.symbol] = {}, {}
        for k, window in enumerate(windows):
            keep, unknown, purged = selector.select(window, k < len(windows) - 1)
            blocks[window.name][0].append(X[keep])
            blocks[window.name][1].append(y[keep])
            blocks[window.name][2].append(selector.context(keep))
            rows[part.symbol][window.name] = int(keep.sum())
            index[part.symbol][window.name] = pd.DatetimeIndex(part.X.index[keep])
            excluded[window.name]["unknown_label"] += unknown
            excluded[window.name]["purged"] += purged
    arrays = {}
    for name, (xs, ys, _) in blocks.items():
        if sum(len(x) for x in xs) == 0:
            raise DataError(
                f"the {name} split is empty ({rows} rows per symbol; excluded: "
                f"{excluded[name]}); use more data or change training.data_split",
                "weak_split",
            )
        arrays[name] = (np.concatenate(xs), np.concatenate(ys))
    scaler = None
    if cfg.model.features.scale_features:
        scaler = Scaler(cfg.model.features.scaling_method).fit(arrays["train"][0])
        for X, _ in arrays.values():
            scaler.transform(X, copy=False)  # our own fresh arrays: scale in place
    (X_train, y_train), (X_val, y_val), (X_test, y_test) = (arrays[n] for n in SPLITS)
    context = {n: pd.concat(blocks[n][2], ignore_index=True) for n in SPLITS}
    report = {
        "method": "dates" if cfg.training.data_split.by_dates else "fractions",
        "windows": {w.name: {"start": _iso(w.start), "end": _iso(w.end)} for w in windows},
        "purge_bars": purge_bars(cfg),
        "rows": {n: len(arrays[n][1]) for n in SPLITS},
        "excluded": excluded,
    }
    return SplitData(
        X_train, y_train, X_val, y_val, X_test, y_test, names, scaler, rows, index, context, report
    )


def weak_split_problems(cfg: StrategyConfig, split: SplitData) -> list[str]:
    """What makes a split too weak to judge a model on: the guards of training.data_split."""
    spec = cfg.training.data_split
    problems = []
    for name, y in (("train", split.y_train), ("validation", split.y_val), ("test", split.y_test)):
        if len(y) < spec.min_rows:
            problems.append(
                f"the {name} split has {len(y)} rows, fewer than min_rows {spec.min_rows}"
            )
    missing = sorted(set(range(3)) - set(np.unique(split.y_train).tolist()))
    if missing:
        names = ", ".join(("BUY", "HOLD", "SELL")[c] for c in missing)
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
    order and scaled with the model's saved scaler."""
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
    fuzzy = compute_fuzzy(cfg, bars, compute_indicators(cfg, bars))
    features = build_features(cfg, fuzzy)[symbol]
    missing = [name for name in feature_names if name not in features.columns]
    if missing:
        raise DataError(
            f"the model expects features this strategy does not produce: {', '.join(missing[:5])}",
            "features",
        )
    X = features[list(feature_names)]
    X = X[X.notna().all(axis=1)]
    if last_n is not None:
        X = X.iloc[-last_n:] if last_n > 0 else X.iloc[:0]
    values = X.to_numpy(dtype=np.float32, copy=True)  # as in training: float32, then scaled
    if scaler is not None:
        values = scaler.transform(values, copy=False)
    return np.ascontiguousarray(values), pd.DatetimeIndex(X.index)
