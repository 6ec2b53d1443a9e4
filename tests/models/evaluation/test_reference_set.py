"""The reference-set writer (models/evaluation/reference_set.py): layout and values.csv."""

import pytest
from PIL import Image

from latentline.models.dataset import read_values
from latentline.models.evaluation.reference_set import make_reference_set, write_values


def blank(size: int = 64) -> Image.Image:
    return Image.new("L", (size, size), 0)


def test_make_reference_set_layout(pcb_dir, tmp_path):
    described = make_reference_set(pcb_dir, tmp_path, n_reference=12, n_test=6, n_good=4, progress=False)
    assert described["quantity"] == "spot_diameter" and described["unit"] == "mm"
    reference = read_values(tmp_path / "reference")
    assert len(reference) == 12
    assert min(reference.values()) == pytest.approx(0.15) and max(reference.values()) == pytest.approx(1.5)
    assert len(read_values(tmp_path / "test" / "spot_diameter")) == 6
    assert len(list((tmp_path / "test" / "good").glob("*.png"))) == 4
    assert (tmp_path / "reference_set.json").is_file()


def test_read_values_checks_header_and_files(tmp_path):
    write_values(tmp_path, [("a.png", "1.0")])
    with pytest.raises(ValueError, match="missing"):
        read_values(tmp_path)
    blank().save(tmp_path / "a.png")
    assert read_values(tmp_path) == {"a.png": 1.0}
    (tmp_path / "values.csv").write_text("name,size\na.png,1\n")
    with pytest.raises(ValueError, match="header"):
        read_values(tmp_path)
