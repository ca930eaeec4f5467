"""The lab's model: softmax regression trained deterministically at lab start.

The data are generated from a fixed seed (10 classes, 16 features), so every lab
trains the same model, and a labelled golden set held out from training lets every
answer be scored for quality.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLASSES = 10
FEATURES = 16
_SEED = 20261126


@dataclass(frozen=True)
class Model:
    weights: np.ndarray  # (FEATURES, CLASSES)
    bias: np.ndarray  # (CLASSES,)

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(np.argmax(features @ self.weights + self.bias, axis=-1))


def make_dataset(samples: int, seed: int = _SEED) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(_SEED).normal(0.0, 1.0, size=(CLASSES, FEATURES))
    labels = rng.integers(0, CLASSES, size=samples)
    features = centres[labels] + rng.normal(0.0, 1.1, size=(samples, FEATURES))
    return features, labels


def train_model(steps: int = 300, learning_rate: float = 0.5) -> Model:
    """Full-batch gradient descent on cross-entropy; deterministic."""
    features, labels = make_dataset(3000, seed=_SEED + 1)
    onehot = np.eye(CLASSES)[labels]
    weights = np.zeros((FEATURES, CLASSES))
    bias = np.zeros(CLASSES)
    for _ in range(steps):
        logits = features @ weights + bias
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        grad = (probs - onehot) / len(features)
        weights -= learning_rate * features.T @ grad
        bias -= learning_rate * grad.sum(axis=0)
    return Model(weights, bias)


def save_model(model: Model, path: Path) -> str:
    """Write the model artifact; return its SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        np.savez(handle, weights=model.weights, bias=model.bias)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_model(path: Path) -> Model:
    with np.load(path) as data:
        return Model(np.array(data["weights"]), np.array(data["bias"]))


def write_golden_set(model: Model, path: Path, samples: int = 400) -> float:
    """Write the held-out labelled golden set; return the model's accuracy on it."""
    features, labels = make_dataset(samples, seed=_SEED + 2)
    records = [
        {"id": i, "features": [round(float(x), 4) for x in row], "label": int(label)}
        for i, (row, label) in enumerate(zip(features, labels, strict=True))
    ]
    path.write_text(json.dumps({"samples": records}), encoding="utf-8")
    return float(np.mean(model.predict(features) == labels))
