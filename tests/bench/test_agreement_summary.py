"""`facefit bench photos`' summary: medians per preset, and the paired figures face by face against the first
preset (a median of a dozen faces moves with whichever face sits in the middle)."""
import pytest

from fitter.bench.agreement import summarise


def row(fast: tuple[float, float], default: tuple[float, float], suspect: dict | None = None) -> dict:
    """One face: (IoU, NME) under each preset."""
    def fit(iou, nme, flag=None):
        return {"iou": iou, "nme": nme, "seconds": 1.0, "suspect": flag}
    return {"input": "x.jpg", "face_index": 0, "fast": fit(*fast), "default": fit(*default, suspect)}


class TestSummary:
    def test_paired_figures_follow_the_same_faces(self):
        # default is higher on 3 of 4 faces, yet its median is lower: the paired figures say which faces
        rows = [row((0.50, 0.020), (0.52, 0.022)), row((0.60, 0.020), (0.61, 0.020)),
                row((0.70, 0.020), (0.71, 0.030)), row((0.80, 0.020), (0.40, 0.020))]
        summary = summarise(rows, ["fast", "default"])
        assert summary["default"]["iou_median"] < summary["fast"]["iou_median"]
        paired = summary["default"]["vs_fast"]
        assert paired["iou_higher_faces"] == 3
        assert paired["iou_paired_median"] == pytest.approx(0.01)
        assert paired["nme_ratio_paired_median"] == pytest.approx(1.05)
        assert "vs_fast" not in summary["fast"]

    def test_an_unflagged_fall_is_counted(self):
        rows = [row((0.70, 0.02), (0.60, 0.02)), row((0.70, 0.02), (0.60, 0.02), {"stage": "photometric-64"})]
        summary = summarise(rows, ["fast", "default"])
        assert summary["default"]["worse_unflagged"] == 1 and len(summary["default"]["worse_than_fast"]) == 2
