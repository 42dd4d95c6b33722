"""The README's Python example runs as written, on the real sample/bead pair of ../shared/data."""

from __future__ import annotations

import re

from conftest import REPO


def test_readme_python_example_runs(shared_data, tmp_path, monkeypatch, capsys):
    text = (REPO / "README.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    folder = shared_data / "bioimage_analysis_notebooks"
    code = (
        code.replace(
            '"sample.tif"', repr(str(folder / "DeconvolutionSampleVerticalGrid1AU-crop.tif"))
        )
        .replace('"beads.tif"', repr(str(folder / "Bead_Image1_crop.tif")))
        .replace("bead_diameter_um=0.2", "bead_diameter_um=0.1")
    )
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "sample_rl.tif").stat().st_size > 0
    printed = capsys.readouterr().out.split()
    assert int(printed[0]) >= 2  # beads used
    assert 0.0 < float(printed[-1]) < 1.0  # decorrelation resolution in µm
