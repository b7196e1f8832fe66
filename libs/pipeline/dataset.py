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

import numpy as np
import pandas as pd

from libs.pipeline.config.strategy import StrategyConfig
from libs.pipeline.data.ohlcv import DataError, load_symbol, parse_bound
from libs.pipeline.features import symbol_features
from libs.pipeline.fuzzy import fuzzy_input
from libs.pipeline.indicators.compute import compute_frame
from libs.pipeline.labels import zigzag_labels
from libs.pipeline.split import SPLITS, Scaler, split_sizes

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
]

Frames = dict[str, dict[str, pd.DataFrame]]  # symbol -> timeframe -> frame


@dataclass(frozen=True)
class SymbolPart:
    """One symbol's usable rows: features and labels on the same index, in time order."""

    symbol: str
    X: pd.DataFrame
    y: pd.Series


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
            cfg.history_required,
        )
        for symbol in cfg.symbols
    }


def compute_indicators(cfg: StrategyConfig, frames: Frames) -> Frames:
    """Indicator columns (by feature_id, `feature_id.output`) on each timeframe's own bars."""
    return {
        symbol: {timeframe: compute_frame(cfg.indicators, bars) for timeframe, bars in tfs.items()}
        for symbol, tfs in frames.items()
    }


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


def build_labels(cfg: StrategyConfig, frames: Frames) -> dict[str, pd.Series]:
    """ZigZag labels (0 BUY, 1 HOLD, 2 SELL) on each symbol's base timeframe close."""
    spec = cfg.training.labels
    out = {}
    for symbol, tfs in frames.items():
        bars = tfs[cfg.base_timeframe]
        values = zigzag_labels(
            bars["close"].to_numpy(), spec.zigzag_threshold, spec.label_lookahead
        )
        out[symbol] = pd.Series(values, index=bars.index, name="label")
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


def combine(features: dict[str, pd.DataFrame], labels: dict[str, pd.Series]) -> list[SymbolPart]:
    """Features and labels of each symbol on their common rows, warm-up (NaN) rows dropped."""
    parts = []
    for symbol, X in features.items():
        y = labels[symbol].reindex(X.index)
        keep = _usable(symbol, X) & y.notna()
        parts.append(SymbolPart(symbol, X[keep], y[keep].astype(np.int64)))
    return parts


def split_and_scale(cfg: StrategyConfig, parts: list[SymbolPart]) -> SplitData:
    """Each symbol split by time (train, validation, test), the splits stacked over symbols,
    then scaled with a scaler fitted on the train rows alone."""
    if not parts:
        raise DataError("no symbols to split", "unusable")
    names = list(parts[0].X.columns)
    fractions = cfg.training.data_split
    rows: dict[str, dict[str, int]] = {}
    index: dict[str, dict[str, pd.DatetimeIndex]] = {}
    blocks: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {n: ([], []) for n in SPLITS}
    for part in parts:
        if list(part.X.columns) != names:
            raise DataError(
                f"{part.symbol}: feature columns differ from {parts[0].symbol}'s", "features"
            )
        # float32 from the start: memberships need no more precision, and a million rows
        # then move through the split at half the memory traffic.
        X, y = part.X.to_numpy(dtype=np.float32), part.y.to_numpy(dtype=np.int64)
        sizes = split_sizes(len(X), fractions.train, fractions.validation)
        bounds = np.cumsum([0, *sizes])
        rows[part.symbol], index[part.symbol] = {}, {}
        for name, lo, hi in zip(SPLITS, bounds[:-1], bounds[1:], strict=True):
            blocks[name][0].append(X[lo:hi])
            blocks[name][1].append(y[lo:hi])
            rows[part.symbol][name] = int(hi - lo)
            index[part.symbol][name] = pd.DatetimeIndex(part.X.index[lo:hi])
    arrays = {}
    for name, (xs, ys) in blocks.items():
        if sum(len(x) for x in xs) == 0:
            raise DataError(
                f"the {name} split is empty ({rows} rows per symbol); use more data or "
                "change training.data_split",
                "unusable",
            )
        arrays[name] = (np.concatenate(xs), np.concatenate(ys))
    scaler = None
    if cfg.model.features.scale_features:
        scaler = Scaler(cfg.model.features.scaling_method).fit(arrays["train"][0])
        for X, _ in arrays.values():
            scaler.transform(X, copy=False)  # our own fresh arrays: scale in place
    (X_train, y_train), (X_val, y_val), (X_test, y_test) = (arrays[n] for n in SPLITS)
    return SplitData(X_train, y_train, X_val, y_val, X_test, y_test, names, scaler, rows, index)


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
            cfg.history_required,
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
