"""Writes reference.csv: PyRadiomics 3.1.4 feature values for settings that its baselines
do not cover (weightingNorm other than no_weighting, force2Ddimension 1 and 2).

Run with a Python that has pyradiomics-bhklab 3.1.4 and SimpleITK installed, from this
folder, with the shared data root as the only argument:

    python make_reference.py ../../../../shared/data

radstudy's tests read the CSV and never run this script.
"""

import csv
import logging
import sys

import radiomics
from radiomics import featureextractor

# The settings of the baselines' "combined" and "2d" variants, without their variant key.
BASE = {
    "label": 1,
    "distances": [1],
    "minimumROIDimensions": 2,
    "interpolator": "sitkBSpline",
    "padDistance": 5,
    "binWidth": 25,
}

# (variant name, extra settings, feature classes)
VARIANTS = [
    ("manhattan", {"weightingNorm": "manhattan"}, ["glcm", "glrlm"]),
    ("euclidean", {"weightingNorm": "euclidean"}, ["glcm", "glrlm"]),
    ("infinity", {"weightingNorm": "infinity"}, ["glcm", "glrlm"]),
    ("coronal", {"force2D": True, "force2Ddimension": 1}, ["glcm", "glrlm", "glszm", "gldm", "ngtdm"]),
    ("sagittal", {"force2D": True, "force2Ddimension": 2}, ["glcm", "glrlm", "glszm", "gldm", "ngtdm"]),
    ("axial_euclidean", {"force2D": True, "force2Ddimension": 0, "weightingNorm": "euclidean"}, ["glcm", "glrlm"]),
]


def main():
    data_root = sys.argv[1]
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    assert radiomics.__version__ == "v3.1.4", radiomics.__version__
    with open("reference.csv", "w", newline="") as output:
        writer = csv.writer(output, lineterminator="\n")
        writer.writerow(["case", "variant", "feature", "value"])
        for case in ["breast1"]:
            image = f"{data_root}/pyradiomics/{case}_image.nrrd"
            mask = f"{data_root}/pyradiomics/{case}_label.nrrd"
            for name, extra, classes in VARIANTS:
                extractor = featureextractor.RadiomicsFeatureExtractor(**BASE, **extra)
                extractor.disableAllFeatures()
                for feature_class in classes:
                    extractor.enableFeatureClassByName(feature_class)
                for feature, value in extractor.execute(image, mask).items():
                    if feature.startswith("original_"):
                        writer.writerow([case, name, feature, repr(float(value))])


if __name__ == "__main__":
    main()
