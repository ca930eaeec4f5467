"""The lab's model: softmax regression trained deterministically at lab start.

The data are generated from a fixed seed (10 classes, 16 features), so every lab
trains the same model, and a labelled golden set held out from training lets every
answer be scored for quality.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aidrill.lab.serving._node_protocols import golden_inputs, golden_prompt

CLASSES = 10
FEATURES = 16
REQUEST_FEATURES = 4  # sent with each request; the rest come from the feature store
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


def mislabelled(model: Model) -> Model:
    """The same model with its classes off by one: a label-mapping bug that loads,
    verifies and answers, and is wrong on almost every answer."""
    return Model(np.roll(model.weights, 1, axis=1), np.roll(model.bias, 1))


def model_bytes(model: Model, payload_bytes: int = 0) -> bytes:
    """The model artifact: weights, bias and a deterministic payload standing in for the
    bulk of a real model's weights (so that artifact size, and a throttled store, matter)."""
    payload = np.random.default_rng(_SEED).integers(0, 255, size=payload_bytes, dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, weights=model.weights, bias=model.bias, payload=payload)
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def model_from_bytes(data: bytes) -> Model:
    with np.load(io.BytesIO(data)) as archive:
        return Model(np.array(archive["weights"]), np.array(archive["bias"]))


def entity_name(sample_id: int) -> str:
    return f"e{sample_id:04d}"


def write_golden_set(
    model: Model, path: Path, samples: int = 400
) -> tuple[float, dict[str, list[float]]]:
    """Write the held-out labelled golden set; return the model's accuracy on it and the
    entity features that belong in the feature store.

    Each request carries an entity id and the first ``REQUEST_FEATURES`` features; the
    others are the entity's features, which the worker reads from the online store.
    """
    features, labels = make_dataset(samples, seed=_SEED + 2)
    records = []
    entities: dict[str, list[float]] = {}
    for i, (row, label) in enumerate(zip(features, labels, strict=True)):
        rounded = [round(float(x), 4) for x in row]
        entity, given = entity_name(i), rounded[:REQUEST_FEATURES]
        # One sample for every protocol the nodes speak: their own (entity and
        # features), the OpenAI-compatible API (a prompt naming both) and the Open
        # Inference Protocol (tensors); every answer names the class as a number.
        records.append(
            {
                "id": i,
                "entity": entity,
                "features": given,
                "label": int(label),
                "prompt": golden_prompt(entity, given),
                "inputs": golden_inputs(entity, given),
                "expect": {"scorer": "numeric", "value": int(label)},
            }
        )
        entities[entity_name(i)] = rounded[REQUEST_FEATURES:]
    path.write_text(json.dumps({"samples": records}), encoding="utf-8")
    return float(np.mean(model.predict(features) == labels)), entities
