"""Write the PyRadiomics feature values of each parameter file in this folder:
expected.json for params.yaml (every image type) and expected_precrop.json for
precrop.yaml (filters after preCrop).

Run from this folder with PyRadiomics installed (`pip install pyradiomics-bhklab`, which
imports as `radiomics`):

    RADSTUDY_DATA_ROOT=/path/to/shared/data python generate_expected.py

The cases are brain1 and breast1 of `pyradiomics/` under the data root. The output
records the versions of PyRadiomics, SimpleITK, PyWavelets and numpy that produced it,
because the LoG and Gradient values depend on SimpleITK and the wavelet bands on
PyWavelets. Diagnostic entries are left out.
"""

import json
import os
import pathlib
from importlib.metadata import version

from radiomics import featureextractor

HERE = pathlib.Path(__file__).resolve().parent
CASES = ["brain1", "breast1"]
OUTPUTS = [("params.yaml", "expected.json"), ("precrop.yaml", "expected_precrop.json")]


def main():
    data_root = pathlib.Path(
        os.environ.get("RADSTUDY_DATA_ROOT", HERE.parents[2] / ".." / ".." / "shared" / "data")
    )
    for parameters, output in OUTPUTS:
        write_expected(data_root, parameters, output)


def write_expected(data_root, parameters, output_name):
    extractor = featureextractor.RadiomicsFeatureExtractor(str(HERE / parameters))

    cases = {}
    for case in CASES:
        image = data_root / "pyradiomics" / f"{case}_image.nrrd"
        mask = data_root / "pyradiomics" / f"{case}_label.nrrd"
        result = extractor.execute(str(image), str(mask))
        cases[case] = {
            name: float(value)
            for name, value in result.items()
            if not name.startswith("diagnostics_")
        }

    expected = {
        "generator": "generate_expected.py",
        "parameters": parameters,
        # Installed package versions; pywt.__version__ of PyWavelets 1.9.0 reads 1.8.0.
        "versions": {
            package: version(package)
            for package in ["pyradiomics-bhklab", "SimpleITK", "PyWavelets", "numpy"]
        },
        "cases": cases,
    }
    with open(HERE / output_name, "w") as output:
        json.dump(expected, output, indent=1, sort_keys=True)
        output.write("\n")


if __name__ == "__main__":
    main()
