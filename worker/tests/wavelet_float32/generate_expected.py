"""Write expected.json: PyRadiomics' wavelet feature values (params.yaml) on three
soft-tissue-sarcoma MR T1 lesions, whose NIfTI images are float32, so that PyWavelets
transforms them in single precision.

Run from this folder with PyRadiomics installed (`pip install pyradiomics-bhklab`, which
imports as `radiomics`):

    RADSTUDY_DATA_ROOT=/path/to/shared/data python generate_expected.py

The cases are `sts/<case>/MR_T1_{image,mask}.nii.gz` under the data root for the three
smallest lesions of the cohort, to keep the test short. The output records the versions
of PyRadiomics, SimpleITK, PyWavelets and numpy that produced it. Diagnostic entries are
left out.
"""

import json
import os
import pathlib
from importlib.metadata import version

import SimpleITK
from radiomics import featureextractor

HERE = pathlib.Path(__file__).resolve().parent
CASES = ["STS_008", "STS_019", "STS_025"]


def main():
    data_root = pathlib.Path(
        os.environ.get("RADSTUDY_DATA_ROOT", HERE.parents[2] / ".." / ".." / "shared" / "data")
    )
    extractor = featureextractor.RadiomicsFeatureExtractor(str(HERE / "params.yaml"))

    cases = {}
    for case in CASES:
        image = data_root / "sts" / case / "MR_T1_image.nii.gz"
        mask = data_root / "sts" / case / "MR_T1_mask.nii.gz"
        pixel_type = SimpleITK.ReadImage(str(image)).GetPixelIDTypeAsString()
        if pixel_type != "32-bit float":
            raise SystemExit(f"{image} reads as {pixel_type}, not 32-bit float")
        result = extractor.execute(str(image), str(mask))
        cases[case] = {
            name: float(value)
            for name, value in result.items()
            if not name.startswith("diagnostics_")
        }

    expected = {
        "generator": "generate_expected.py",
        "parameters": "params.yaml",
        # Installed package versions; pywt.__version__ of PyWavelets 1.9.0 reads 1.8.0.
        "versions": {
            package: version(package)
            for package in ["pyradiomics-bhklab", "SimpleITK", "PyWavelets", "numpy"]
        },
        "cases": cases,
    }
    with open(HERE / "expected.json", "w") as output:
        json.dump(expected, output, indent=1, sort_keys=True)
        output.write("\n")


if __name__ == "__main__":
    main()
