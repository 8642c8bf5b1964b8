"""Writes expected.json for worker/src/image/resample/tests.rs.

Runs PyRadiomics' own resampling (radiomics.imageoperations.resampleImage,
SimpleITK underneath) on PyRadiomics' test cases and records, per case, the
new grid and a fingerprint of the resampled image and mask: their sums, the
ROI voxel count and a few voxel values. Origins are converted from
SimpleITK's LPS frame to the RAS frame that radstudy's readers use.

Usage (a Python with `pyradiomics-bhklab` and SimpleITK installed):
    python generate_expected.py /path/to/shared/data/pyradiomics > expected.json
"""

import json
import sys

import numpy
import radiomics
import SimpleITK as sitk
from radiomics import imageoperations

CASES = [
    ("brain1", "sitkBSpline", [2, 2, 2]),
    ("brain1", "sitkLinear", [2, 2, 2]),
    ("brain1", "sitkNearestNeighbor", [2, 2, 2]),
    ("breast1", "sitkBSpline", [1, 1, 1]),
    ("breast1", "sitkBSpline", [0, 0, 3]),
]

# Voxels to report, as (i, j, k) fractions of the new size.
PROBES = [(0.5, 0.5, 0.5), (0.25, 0.75, 0.5), (0.1, 0.2, 0.3), (0.0, 0.0, 0.0)]


def main(root):
    out = {"pyradiomics": radiomics.__version__, "simpleitk": sitk.Version.VersionString(), "cases": []}
    for name, interpolator, spacing in CASES:
        image = sitk.ReadImage(f"{root}/{name}_image.nrrd")
        mask = sitk.ReadImage(f"{root}/{name}_label.nrrd")
        new_image, new_mask = imageoperations.resampleImage(
            image, mask, resampledPixelSpacing=spacing, interpolator=interpolator,
            padDistance=5, label=1)
        voxels = sitk.GetArrayFromImage(new_image).astype(float)  # [k, j, i]
        labels = sitk.GetArrayFromImage(new_mask)
        size = list(new_image.GetSize())
        origin = list(new_image.GetOrigin())
        probes = []
        for fi, fj, fk in PROBES:
            i, j, k = int(fi * (size[0] - 1)), int(fj * (size[1] - 1)), int(fk * (size[2] - 1))
            probes.append({"index": [i, j, k], "value": float(voxels[k, j, i])})
        out["cases"].append({
            "image": f"{name}_image.nrrd",
            "mask": f"{name}_label.nrrd",
            "interpolator": interpolator,
            "spacing_requested": spacing,
            "size": size,
            "spacing": list(new_image.GetSpacing()),
            "origin_ras": [-origin[0], -origin[1], origin[2]],
            "image_sum": float(voxels.sum()),
            "roi_voxels": int((labels == 1).sum()),
            "roi_sum": float(voxels[labels == 1].sum()),
            "probes": probes,
        })
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main(sys.argv[1])
