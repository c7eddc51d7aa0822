"""History: one record per completed epoch (loss, accuracy, validation scores, timing)."""

from __future__ import annotations

from dataclasses import dataclass, field

HISTORY_KEYS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds")


@dataclass
class History:
    """Per-epoch records: epoch, loss, accuracy, val_loss, val_accuracy, learning_rate, seconds."""

    records: list[dict] = field(default_factory=list)

    def append(self, record: dict) -> None:
        self.records.append(record)

    def __len__(self) -> int:
        return len(self.records)

    def column(self, key: str) -> list:
        return [r.get(key) for r in self.records]

    def to_csv(self) -> str:
        keys = [k for k in HISTORY_KEYS if any(k in r for r in self.records)]
        lines = [",".join(keys)]
        for record in self.records:
            lines.append(",".join(_fmt(record.get(k)) for k in keys))
        return "\n".join(lines) + "\n"


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
