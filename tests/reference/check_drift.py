"""Compare freshly regenerated R fixtures with the committed ones.

Usage: python check_drift.py NEW_DIR COMMITTED_DIR. Exits 1 and lists every
value that moved by more than 1e-9 relative (datasets must match exactly),
and every fixture present on one side only.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

RTOL, ATOL = 1e-9, 1e-12


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, comment="#", na_values=["NA"], keep_default_na=False)


def _generated(root: Path) -> set[Path]:
    """Files R writes: top-level fixtures and the exported datasets (not hand-kept
    oracles such as ``spss31_km/``, which no script produces)."""
    found = list(root.glob("*.csv")) + list((root / "datasets").glob("*.csv"))
    return {p.relative_to(root) for p in found}


def compare(new_dir: Path, old_dir: Path) -> list[str]:
    problems = []
    new, old = _generated(new_dir), _generated(old_dir)
    for rel in sorted(new ^ old):
        side = "regenerated only" if rel in new else "committed only"
        problems.append(f"{rel}: {side}")
    for rel in sorted(new & old):
        a, b = _read(new_dir / rel), _read(old_dir / rel)
        if rel.parts[0] == "datasets":
            if not a.equals(b):
                problems.append(f"{rel}: dataset differs")
            continue
        key = ["case", "quantity", "i"]
        merged = a.merge(b, on=key, how="outer", suffixes=("_new", "_old"), indicator=True)
        for _, row in merged[merged["_merge"] != "both"].iterrows():
            problems.append(f"{rel}: {row['case']}/{row['quantity']}[{row['i']}] only in {row['_merge']}")
        both = merged[merged["_merge"] == "both"]
        x, y = both["value_new"].to_numpy(float), both["value_old"].to_numpy(float)
        same = np.isclose(x, y, rtol=RTOL, atol=ATOL) | (np.isnan(x) & np.isnan(y))
        for (_, row), ok in zip(both.iterrows(), same):
            if not ok:
                problems.append(f"{rel}: {row['case']}/{row['quantity']}[{row['i']}] "
                                f"committed {row['value_old']!r}, R now gives {row['value_new']!r}")
    return problems


if __name__ == "__main__":
    found = compare(Path(sys.argv[1]), Path(sys.argv[2]))
    for line in found:
        print("DRIFT", line)
    print(f"reference drift check: {len(found)} problem(s)")
    sys.exit(1 if found else 0)
