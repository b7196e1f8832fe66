"""Rebuild the sample CSVs in data/ from the PyPI packages that ship them.

    pip download --no-deps -d /tmp/sample gym-anytrading==2.0.0 bokeh-sampledata==2026.1
    python scripts/import_sample_data.py /tmp/sample

Output format: data/{SYMBOL}_{TF}.csv with columns timestamp (ISO 8601, UTC), open, high, low,
close, volume. See data/README.md for sources and licences.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import pandas as pd

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
COLUMNS = ["timestamp", "open", "high", "low", "close", "volume"]


def _member(wheel_dir: Path, pattern: str, inner: str):
    wheel = next(wheel_dir.glob(pattern))
    return zipfile.ZipFile(wheel).open(inner)


def import_eurusd(wheel_dir: Path) -> None:
    raw = pd.read_csv(
        _member(
            wheel_dir,
            "gym_anytrading-*.whl",
            "gym_anytrading/datasets/data/FOREX_EURUSD_1H_ASK.csv",
        )
    )
    out = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(raw["Time"], format="%d.%m.%Y %H:%M:%S.%f", utc=True),
            "open": raw["Open"],
            "high": raw["High"],
            "low": raw["Low"],
            "close": raw["Close"],
            "volume": raw["Volume"].round(2),
        }
    )
    _write(out, "EURUSD_1h")


def import_stocks(wheel_dir: Path) -> None:
    raw = pd.read_csv(
        _member(wheel_dir, "bokeh_sampledata-*.whl", "bokeh_sampledata/_data/stocks.csv.gz"),
        compression="gzip",
    )
    for ticker in ("AAPL", "MSFT", "IBM", "GOOG"):
        rows = raw[raw["Ticker"] == ticker]
        # Split/dividend-adjust OHLC with the source's Adj Close so splits are not price jumps.
        factor = rows["Adj Close"] / rows["Close"]
        out = pd.DataFrame(
            {
                "timestamp": pd.to_datetime(rows["Date"], utc=True),
                "open": (rows["Open"] * factor).round(4),
                "high": (rows["High"] * factor).round(4),
                "low": (rows["Low"] * factor).round(4),
                "close": (rows["Close"] * factor).round(4),
                "volume": rows["Volume"],
            }
        )
        _write(out, f"{ticker}_1d")


def _write(frame: pd.DataFrame, name: str) -> None:
    frame = frame.sort_values("timestamp").drop_duplicates("timestamp")
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    frame[COLUMNS].to_csv(DATA_DIR / f"{name}.csv", index=False)
    print(f"{name}: {len(frame)} rows")


if __name__ == "__main__":
    source = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    import_eurusd(source)
    import_stocks(source)
