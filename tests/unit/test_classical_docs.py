"""The Python examples in docs/classical.md run."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "classical.md"


def test_docs_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {})


def test_five_dimensional_stack_with_one_psf():
    import numpy as np

    from neurodecon.classical import deconvolve

    psf = np.zeros((3, 3, 3), np.float32)
    psf[1, 1, 1] = 1
    data = np.random.default_rng(0).uniform(1, 2, (2, 2, 4, 8, 8)).astype(np.float32)
    out = deconvolve(data, psf, "rl", iterations=3, device="cpu")
    np.testing.assert_allclose(out, data, rtol=1e-5)
