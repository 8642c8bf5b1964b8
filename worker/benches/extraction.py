"""PyRadiomics side of `cargo bench -p radstudy-worker --bench extraction`.

Extracts the features of each case with PyRadiomics' default settings: every
feature class on the original image, bin width 25, label 1. The cases run one
after another on one thread. For each case it prints one JSON line with the
case id, the seconds that `RadiomicsFeatureExtractor.execute` took, and the
feature values. The time includes reading the files, as on radstudy's side.

Usage: python extraction.py CASES.csv, where CASES.csv has the columns ID,
Image and Mask with absolute paths. Needs `pip install pyradiomics-bhklab`.
"""

import csv
import json
import logging
import sys
import time

import radiomics
from radiomics import featureextractor


def main(cases_path):
    radiomics.setVerbosity(logging.ERROR)
    extractor = featureextractor.RadiomicsFeatureExtractor()
    extractor.enableAllFeatures()
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
            if name.startswith("original_")
        }
        print(json.dumps({"id": case["ID"], "seconds": seconds, "features": features}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
