"""PyRadiomics side of `cargo bench -p radstudy-worker --bench extraction`.

Extracts the features of each case with PyRadiomics, by default with its default
settings: every feature class on the original image, bin width 25, label 1. With
`--param FILE` it uses that PyRadiomics parameter file instead (the bench's
`--filters` mode passes one that adds LoG and Wavelet). The cases run one after
another on one thread (SimpleITK limited to one thread too). For each case it prints one JSON line with the case id, the
seconds that `RadiomicsFeatureExtractor.execute` took, and the feature values of
every image type (the `diagnostics_` entries are left out). The time includes
reading the files, as on radstudy's side.

Usage: python extraction.py CASES.csv [--param FILE], where CASES.csv has the
columns ID, Image and Mask with absolute paths. Needs `pip install
pyradiomics-bhklab`.
"""

import argparse
import csv
import json
import logging
import time

import radiomics
import SimpleITK
from radiomics import featureextractor


def main(cases_path, parameter_file):
    radiomics.setVerbosity(logging.ERROR)
    # SimpleITK's filters (LoG) use every core by default; the bench compares one thread.
    SimpleITK.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    if parameter_file is None:
        extractor = featureextractor.RadiomicsFeatureExtractor()
        extractor.enableAllFeatures()
    else:
        extractor = featureextractor.RadiomicsFeatureExtractor(parameter_file)
    with open(cases_path, newline="") as handle:
        cases = list(csv.DictReader(handle))
    print(json.dumps({"pyradiomics": radiomics.__version__}), flush=True)
    for case in cases:
        start = time.perf_counter()
        result = extractor.execute(case["Image"], case["Mask"])
        seconds = time.perf_counter() - start
        features = {
            name: float(value)
            for name, value in result.items()
            if not name.startswith("diagnostics_")
        }
        print(json.dumps({"id": case["ID"], "seconds": seconds, "features": features}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", help="CSV file with the columns ID, Image and Mask")
    parser.add_argument("--param", help="PyRadiomics parameter file (YAML)")
    arguments = parser.parse_args()
    main(arguments.cases, arguments.param)
