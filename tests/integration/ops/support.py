"""Helpers for the operations tests: scraping Prometheus text, reading JSON log lines."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable

import requests
from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample at ``url`` (a /metrics endpoint), keyed by name and sorted labels."""
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, (response.status_code, response.text[:300])
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: dict, name: str, where: Callable[[dict[str, str]], bool] = lambda _labels: True) -> float:
    """The sum of ``name`` over the label sets ``where`` accepts."""
    return sum(value for (n, labels), value in samples.items() if n == name and where(dict(labels)))


def json_lines(text: str) -> list[dict]:
    """The JSON objects of a process's log (every line it writes should be one)."""
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                found.append(json.loads(line))
    return found


def non_json_lines(text: str) -> list[str]:
    bad = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            json.loads(line)
        except json.JSONDecodeError:
            bad.append(line)
    return bad
